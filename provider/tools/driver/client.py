"""Call a provider over its unix socket the way the Secrets Store CSI driver does.

Connection: insecure gRPC, `:authority` "localhost", at most 4 MiB per response,
wait-for-ready with up to 3 attempts on UNAVAILABLE. A Mount response is then
judged like the driver's `MountContent`: a gRPC error, a non-empty `error.code`
or an empty `object_version` fails the mount; an empty `files` list succeeds and
writes nothing; otherwise every path must pass the driver's checks before the
files are written with the atomic writer.

This is the one module besides the servicer that touches the generated protobuf code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import grpc

from provider.tools.driver.paths import validate_payload_paths
from provider.tools.driver.writer import File, write_payloads
from provider.v1alpha1 import service_pb2, service_pb2_grpc

__all__ = [
    "DEFAULT_PERMISSION",
    "DEFAULT_TIMEOUT_SECONDS",
    "MAX_RECEIVE_BYTES",
    "MountResult",
    "ProviderCallError",
    "ProviderClient",
]

API_VERSION = "v1alpha1"
# json.Marshal of the driver's os.FileMode(0644).
DEFAULT_PERMISSION = "420"
# The driver's default --max-call-recv-msg-size.
MAX_RECEIVE_BYTES = 4 * 1024 * 1024
# The driver sets no deadline of its own; kubelet's NodePublishVolume deadline applies.
DEFAULT_TIMEOUT_SECONDS = 120.0

_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{"service": "v1alpha1.CSIDriverProvider"}],
                "waitForReady": True,
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "1s",
                    "maxBackoff": "10s",
                    "backoffMultiplier": 1.1,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)


class ProviderCallError(Exception):
    """A Mount or Version call that fails the volume, with the gRPC code the caller would see.

    `provider_code` is the response's `error.code` when that is what failed the call.
    Failures judged by the driver itself (error code, missing versions) carry UNKNOWN,
    the code kubelet gets for the driver's plain errors.
    """

    def __init__(self, code: grpc.StatusCode, message: str, *, provider_code: str = "") -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.provider_code = provider_code


@dataclass(frozen=True)
class MountResult:
    """What a Mount produced: the files, `{object id: version}`, and whether the volume changed.

    `changed` is only ever True from `mount_into`, when it rewrote the volume.
    """

    files: tuple[File, ...]
    versions: dict[str, str] = field(default_factory=dict)
    changed: bool = False


class ProviderClient:
    """A connection to one provider socket; close it, or use it as a context manager."""

    def __init__(
        self,
        socket_path: str | os.PathLike[str],
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        max_receive_bytes: int = MAX_RECEIVE_BYTES,
    ) -> None:
        self.socket_path = os.path.abspath(socket_path)
        self.timeout_seconds = timeout_seconds
        self._channel = grpc.insecure_channel(
            f"unix://{self.socket_path}",
            options=[
                ("grpc.default_authority", "localhost"),
                ("grpc.max_receive_message_length", max_receive_bytes),
                ("grpc.service_config", _SERVICE_CONFIG),
                ("grpc.enable_retries", 1),
            ],
        )
        # The generated stub module has no type information.
        stub_class: Any = service_pb2_grpc.CSIDriverProviderStub
        self._stub = stub_class(self._channel)

    def version(self) -> tuple[str, str, str]:
        """Call Version as the driver's health check does; return (version, runtime_name, runtime_version)."""
        request = service_pb2.VersionRequest(version=API_VERSION)
        response: service_pb2.VersionResponse = self._call(self._stub.Version, request)
        return response.version, response.runtime_name, response.runtime_version

    def mount(
        self,
        attributes: str,
        secrets: str,
        target_path: str,
        permission: str = DEFAULT_PERMISSION,
        current_versions: Mapping[str, str] | None = None,
    ) -> MountResult:
        """Call Mount and apply the driver's checks to the answer; write nothing.

        Raises ProviderCallError when the driver would fail the mount before writing,
        and InvalidPayloadPath when it would refuse a file path. `current_versions`
        is what drivers up to 1.5 sent on rotation; 1.6 sends none.
        """
        request = service_pb2.MountRequest(
            attributes=attributes,
            secrets=secrets,
            target_path=target_path,
            permission=permission,
            current_object_version=[
                service_pb2.ObjectVersion(id=object_id, version=version)
                for object_id, version in (current_versions or {}).items()
            ],
        )
        response: service_pb2.MountResponse = self._call(self._stub.Mount, request)
        if response.error.code:
            raise ProviderCallError(
                grpc.StatusCode.UNKNOWN,
                f"mount request failed with provider error code {response.error.code}",
                provider_code=response.error.code,
            )
        if not response.object_version:
            raise ProviderCallError(grpc.StatusCode.UNKNOWN, "missing object versions")
        # Later duplicates win, as in the driver's map.
        versions = {item.id: item.version for item in response.object_version}
        files = tuple(File(path=item.path, mode=item.mode, contents=item.contents) for item in response.files)
        if files:
            validate_payload_paths(file.path for file in files)
        return MountResult(files=files, versions=versions)

    def mount_into(
        self,
        target_dir: str | os.PathLike[str],
        attributes: str,
        secrets: str,
        permission: str = DEFAULT_PERMISSION,
        current_versions: Mapping[str, str] | None = None,
    ) -> MountResult:
        """Mount, then write the files into `target_dir` like the driver's MountContent.

        `target_dir` is created if missing and sent as `target_path`. An empty `files`
        list leaves the directory untouched (legacy providers wrote files themselves).
        """
        target = os.path.abspath(target_dir)
        # The driver creates the target path itself when kubelet has not (1.20+).
        os.makedirs(target, mode=0o750, exist_ok=True)
        result = self.mount(attributes, secrets, target, permission, current_versions)
        if not result.files:
            return result
        changed = write_payloads(target, result.files)
        return MountResult(files=result.files, versions=result.versions, changed=changed)

    def close(self) -> None:
        """Close the channel; further calls fail."""
        self._channel.close()

    def __enter__(self) -> ProviderClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, method: Any, request: Any) -> Any:
        try:
            return method(request, timeout=self.timeout_seconds)
        except grpc.RpcError as exc:
            raise ProviderCallError(exc.code(), exc.details() or "") from exc
