"""The messages the provider's socket carries: v1alpha1 (`proto/`) and grpc.health.v1's Check.

Each is a frozen dataclass with the generated class's field names, and only the direction
the provider needs: requests are decoded, answers encoded (the health Check both ways, as
the probe asks it too). Decoding follows proto3: a field sent with another wire type
than its own is skipped as unknown, as the runtimes do.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from provider.serve.protobuf_wire import (
    LENGTH_DELIMITED,
    VARINT,
    as_int32,
    bytes_field,
    fields,
    message_field,
    string_field,
    text,
    varint_field,
)

__all__ = [
    "HEALTH_STATUS_NAMES",
    "NOT_SERVING",
    "SERVING",
    "File",
    "HealthCheckRequest",
    "HealthCheckResponse",
    "MountRequest",
    "MountResponse",
    "ObjectVersion",
    "VersionRequest",
    "VersionResponse",
]


def _strings(data: bytes, count: int) -> list[str]:
    """Fields 1..count of a message whose fields are all strings; other fields are skipped."""
    values = [""] * count
    for number, wire, value in fields(data):
        if number <= count and wire == LENGTH_DELIMITED:
            assert isinstance(value, bytes)
            values[number - 1] = text(value, number)
    return values


@dataclass(frozen=True, slots=True)
class VersionRequest:
    version: str = ""

    @classmethod
    def decode(cls, data: bytes) -> VersionRequest:
        return cls(*_strings(data, 1))


@dataclass(frozen=True, slots=True)
class VersionResponse:
    version: str = ""
    runtime_name: str = ""
    runtime_version: str = ""

    def encode(self) -> bytes:
        return (
            string_field(1, self.version)
            + string_field(2, self.runtime_name)
            + string_field(3, self.runtime_version)
        )


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    id: str = ""
    version: str = ""

    @classmethod
    def decode(cls, data: bytes) -> ObjectVersion:
        return cls(*_strings(data, 2))

    def encode(self) -> bytes:
        return string_field(1, self.id) + string_field(2, self.version)


@dataclass(frozen=True, slots=True)
class MountRequest:
    attributes: str = ""
    secrets: str = ""
    target_path: str = ""
    permission: str = ""
    current_object_version: tuple[ObjectVersion, ...] = ()

    @classmethod
    def decode(cls, data: bytes) -> MountRequest:
        values = ["", "", "", ""]
        versions: list[ObjectVersion] = []
        for number, wire, value in fields(data):
            if wire != LENGTH_DELIMITED:
                continue
            assert isinstance(value, bytes)
            if number <= 4:
                values[number - 1] = text(value, number)
            elif number == 5:
                versions.append(ObjectVersion.decode(value))
        attributes, secrets, target_path, permission = values
        return cls(attributes, secrets, target_path, permission, tuple(versions))


@dataclass(frozen=True, slots=True)
class File:
    path: str = ""
    mode: int = 0
    contents: bytes = b""

    def encode(self) -> bytes:
        return string_field(1, self.path) + varint_field(2, self.mode) + bytes_field(3, self.contents)


@dataclass(frozen=True)
class MountResponse:
    """The volume's files and versions; the `error` field is left unset, as errors go as gRPC statuses."""

    object_version: tuple[ObjectVersion, ...] = ()
    files: tuple[File, ...] = ()

    @cached_property
    def _encoded(self) -> bytes:
        # Kept: the servicer measures the answer against the driver's limit, then it is sent.
        return b"".join(
            [message_field(1, version.encode()) for version in self.object_version]
            + [message_field(3, file.encode()) for file in self.files]
        )

    @property
    def size(self) -> int:
        """Bytes on the wire, as the driver's receive limit counts them."""
        return len(self._encoded)

    def encode(self) -> bytes:
        return self._encoded


# grpc.health.v1.HealthCheckResponse.ServingStatus
SERVING = 1
NOT_SERVING = 2
HEALTH_STATUS_NAMES = {0: "UNKNOWN", SERVING: "SERVING", NOT_SERVING: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


@dataclass(frozen=True, slots=True)
class HealthCheckRequest:
    service: str = ""

    @classmethod
    def decode(cls, data: bytes) -> HealthCheckRequest:
        return cls(*_strings(data, 1))

    def encode(self) -> bytes:
        return string_field(1, self.service)


@dataclass(frozen=True, slots=True)
class HealthCheckResponse:
    status: int = 0

    @classmethod
    def decode(cls, data: bytes) -> HealthCheckResponse:
        status = 0
        for number, wire, value in fields(data):
            if number == 1 and wire == VARINT:
                assert isinstance(value, int)
                status = as_int32(value)
        return cls(status)

    def encode(self) -> bytes:
        return varint_field(1, self.status)
