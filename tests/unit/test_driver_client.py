"""The driver-side gRPC client against a canned provider on a real unix socket."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from provider.tools.driver import (
    DATA_DIR,
    MAX_RECEIVE_BYTES,
    File,
    InvalidPayloadPath,
    ProviderCallError,
    ProviderClient,
)
from provider.v1alpha1 import service_pb2, service_pb2_grpc

pb = service_pb2


@dataclass
class CannedProvider(service_pb2_grpc.CSIDriverProviderServicer):  # type: ignore[misc]
    """Answers Mount with `response`, or aborts with `abort`; records every request."""

    response: Any = None
    abort: tuple[grpc.StatusCode, str] | None = None
    requests: list[Any] = field(default_factory=list)

    def Version(self, request: Any, context: Any) -> Any:
        self.requests.append(request)
        return pb.VersionResponse(version="v1alpha1", runtime_name="canned", runtime_version="1.2.3")

    def Mount(self, request: Any, context: Any) -> Any:
        self.requests.append(request)
        if self.abort is not None:
            context.abort(*self.abort)
        return self.response


@pytest.fixture
def provider() -> CannedProvider:
    return CannedProvider(response=ok_response())


@pytest.fixture
def socket_path(tmp_path: Path, provider: CannedProvider) -> Iterator[Path]:
    path = tmp_path / "vault.sock"
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    service_pb2_grpc.add_CSIDriverProviderServicer_to_server(provider, server)
    server.add_insecure_port(f"unix://{path}")
    server.start()
    yield path
    server.stop(None)


@pytest.fixture
def client(socket_path: Path) -> Iterator[ProviderClient]:
    with ProviderClient(socket_path, timeout_seconds=10) as connected:
        yield connected


def ok_response(**changes: Any) -> Any:
    """A valid MountResponse with two files, with `changes` applied to its fields."""
    fields: dict[str, Any] = {
        "object_version": [
            pb.ObjectVersion(id="db-password", version="v1"),
            pb.ObjectVersion(id="tls/key", version="v2"),
        ],
        "files": [
            pb.File(path="db-password", mode=0o600, contents=b"s3cret"),
            pb.File(path="tls/key", mode=0o644, contents=b"k"),
        ],
    }
    fields.update(changes)
    return pb.MountResponse(**fields)


def test_version(client: ProviderClient, provider: CannedProvider) -> None:
    """Version sends the contract version the driver sends and returns the provider's answer."""
    assert client.version() == ("v1alpha1", "canned", "1.2.3")
    assert provider.requests[0].version == "v1alpha1"


def test_mount_sends_request_and_returns_files(client: ProviderClient, provider: CannedProvider) -> None:
    """The request carries the strings unchanged; the result holds files and versions."""
    result = client.mount(
        '{"roleName":"app"}', "null", "/var/lib/kubelet/pods/x/volumes/v/mount", current_versions={"a": "1"}
    )

    (request,) = provider.requests
    assert (request.attributes, request.secrets, request.target_path, request.permission) == (
        '{"roleName":"app"}',
        "null",
        "/var/lib/kubelet/pods/x/volumes/v/mount",
        "420",
    )
    assert [(v.id, v.version) for v in request.current_object_version] == [("a", "1")]
    assert result.files == (File("db-password", 0o600, b"s3cret"), File("tls/key", 0o644, b"k"))
    assert result.versions == {"db-password": "v1", "tls/key": "v2"}
    assert result.changed is False


def test_mount_without_current_versions_sends_none(client: ProviderClient, provider: CannedProvider) -> None:
    """Driver 1.6 sends no current_object_version; neither does the client by default."""
    client.mount("{}", "null", "/t")
    assert list(provider.requests[0].current_object_version) == []


@pytest.mark.parametrize(
    ("abort", "response", "code", "message", "provider_code"),
    [
        pytest.param(
            (grpc.StatusCode.PERMISSION_DENIED, "vault refused role 'app'"),
            None,
            grpc.StatusCode.PERMISSION_DENIED,
            "vault refused role 'app'",
            "",
            id="grpc-status",
        ),
        pytest.param(
            (grpc.StatusCode.INVALID_ARGUMENT, "objects[0]: objectName missing"),
            None,
            grpc.StatusCode.INVALID_ARGUMENT,
            "objects[0]: objectName missing",
            "",
            id="grpc-invalid-argument",
        ),
        pytest.param(
            None,
            ok_response(error=pb.Error(code="VaultUnavailable")),
            grpc.StatusCode.UNKNOWN,
            "mount request failed with provider error code VaultUnavailable",
            "VaultUnavailable",
            id="error-code-in-response",
        ),
        pytest.param(
            None,
            ok_response(error=pb.Error(code="X"), object_version=[]),
            grpc.StatusCode.UNKNOWN,
            "mount request failed with provider error code X",
            "X",
            id="error-code-checked-before-versions",
        ),
        pytest.param(
            None,
            ok_response(object_version=[]),
            grpc.StatusCode.UNKNOWN,
            "missing object versions",
            "",
            id="files-without-versions",
        ),
        pytest.param(
            None,
            pb.MountResponse(),
            grpc.StatusCode.UNKNOWN,
            "missing object versions",
            "",
            id="empty-response",
        ),
        pytest.param(
            None,
            ok_response(files=[pb.File(path="big", mode=0o644, contents=b"x" * (MAX_RECEIVE_BYTES + 1))]),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            None,
            "",
            id="over-4-MiB",
        ),
    ],
)
def test_mount_failures(
    client: ProviderClient,
    provider: CannedProvider,
    abort: tuple[grpc.StatusCode, str] | None,
    response: Any,
    code: grpc.StatusCode,
    message: str | None,
    provider_code: str,
) -> None:
    """Every way the driver fails a mount before writing surfaces as ProviderCallError with its code."""
    provider.abort = abort
    provider.response = response
    with pytest.raises(ProviderCallError) as caught:
        client.mount("{}", "null", "/t")
    assert caught.value.code == code
    if message is None:
        # gRPC's own wording, wrapped differently across versions.
        assert re.search(r"Received message larger than max \(\d+ vs\. 4194304\)", caught.value.message)
    else:
        assert caught.value.message == message
        assert str(caught.value) == f"{code.name}: {message}"
    assert caught.value.provider_code == provider_code


def test_response_just_under_4_mib_accepted(client: ProviderClient, provider: CannedProvider) -> None:
    """The limit is on the whole message: one file a little under 4 MiB still arrives."""
    contents = b"x" * (MAX_RECEIVE_BYTES - 1024)
    provider.response = ok_response(files=[pb.File(path="big", mode=0o644, contents=contents)])
    assert client.mount("{}", "null", "/t").files[0].contents == contents


def test_larger_receive_limit_configurable(socket_path: Path, provider: CannedProvider) -> None:
    """Like the driver's --max-call-recv-msg-size, a larger limit lets a larger answer through."""
    provider.response = ok_response(
        files=[pb.File(path="big", mode=0o644, contents=b"x" * (MAX_RECEIVE_BYTES + 1))]
    )
    with ProviderClient(socket_path, timeout_seconds=10, max_receive_bytes=2 * MAX_RECEIVE_BYTES) as client:
        assert len(client.mount("{}", "null", "/t").files[0].contents) == MAX_RECEIVE_BYTES + 1


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        pytest.param(
            ["../../etc/cron.d/x"],
            "invalid file path '../../etc/cron.d/x': must not contain a '..' element",
            id="escape",
        ),
        pytest.param(
            ["/etc/passwd"], "invalid file path '/etc/passwd': must be a relative path", id="absolute"
        ),
        pytest.param(
            ["a/"],
            "invalid file path 'a/': must be in clean form ('a'): no '//', './' or trailing '/'",
            id="unclean",
        ),
        pytest.param(
            ["a", "a/b"],
            "conflicting file paths: 'a' and 'a/b' (a file cannot also be a directory)",
            id="conflict",
        ),
    ],
)
def test_bad_paths_rejected(
    client: ProviderClient, provider: CannedProvider, tmp_path: Path, paths: list[str], message: str
) -> None:
    """A response with a path the driver refuses fails, and mount_into writes nothing."""
    provider.response = ok_response(files=[pb.File(path=path, mode=0o644, contents=b"") for path in paths])
    with pytest.raises(InvalidPayloadPath) as caught:
        client.mount("{}", "null", "/t")
    assert str(caught.value) == message

    volume = tmp_path / "volume"
    with pytest.raises(InvalidPayloadPath):
        client.mount_into(volume, "{}", "null")
    assert list(volume.iterdir()) == []


def test_mount_into_writes_then_skips_identical(
    client: ProviderClient, provider: CannedProvider, tmp_path: Path
) -> None:
    """mount_into creates the volume dir, sends it as target_path, writes the files, and is idempotent."""
    volume = tmp_path / "pods" / "volume"

    first = client.mount_into(volume, "{}", "null")
    assert first.changed is True
    assert provider.requests[0].target_path == str(volume)
    assert (volume / "db-password").read_bytes() == b"s3cret"
    assert (volume / "tls" / "key").read_bytes() == b"k"
    data_dir = os.readlink(volume / DATA_DIR)

    second = client.mount_into(volume, "{}", "null")
    assert second.changed is False
    assert second.versions == {"db-password": "v1", "tls/key": "v2"}
    assert os.readlink(volume / DATA_DIR) == data_dir


def test_mount_into_with_no_files_leaves_volume_alone(
    client: ProviderClient, provider: CannedProvider, tmp_path: Path
) -> None:
    """An empty `files` list succeeds and writes nothing, as the driver does for legacy providers."""
    volume = tmp_path / "volume"
    client.mount_into(volume, "{}", "null")
    provider.response = ok_response(files=[])

    result = client.mount_into(volume, "{}", "null")

    assert result.changed is False
    assert result.files == ()
    assert (volume / "db-password").read_bytes() == b"s3cret"


def test_no_provider_listening_times_out(tmp_path: Path) -> None:
    """With wait-for-ready, a missing socket is waited for until the deadline, like the driver's client."""
    with (
        ProviderClient(tmp_path / "absent.sock", timeout_seconds=0.3) as client,
        pytest.raises(ProviderCallError) as caught,
    ):
        client.version()
    assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED


def test_unavailable_is_retried_three_times(client: ProviderClient, provider: CannedProvider) -> None:
    """The driver's service config retries UNAVAILABLE: three attempts, then the status comes through."""
    provider.abort = (grpc.StatusCode.UNAVAILABLE, "vault sealed")
    with pytest.raises(ProviderCallError) as caught:
        client.mount("{}", "null", "/t")
    assert (caught.value.code, caught.value.message) == (grpc.StatusCode.UNAVAILABLE, "vault sealed")
    assert len(provider.requests) == 3
