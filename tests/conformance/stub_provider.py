"""A stand-in provider on a unix socket: canned Mount answers, or a recording relay to the real one.

It speaks the real `v1alpha1.CSIDriverProvider` service over `<directory>/vault.sock`, so
the driver's Go client connects to it exactly as to a provider. Two uses:

- `answer(response)`: every Mount gets this MountResponse, e.g. a deliberately broken one
  (no object versions, a path with `..`) to show the clients refuse it;
- `relay_to(socket)` then `replay()`: the first Mount is forwarded to the real provider
  and its response kept; after `replay()` the next Mount gets that same response. PKI and
  database credentials are issued anew on every Mount, so this is how two clients get
  the very same bytes to write.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc

from provider.v1alpha1 import service_pb2, service_pb2_grpc

__all__ = ["StubProvider", "mount_response"]

_RUNTIME_VERSION = "0.0.0-stub"
_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def mount_response(
    files: list[tuple[str, int, bytes]], versions: dict[str, str] | None = None, error_code: str = ""
) -> Any:
    """A MountResponse of (path, mode, contents) files, {id: version} and an optional error code."""
    return service_pb2.MountResponse(
        files=[service_pb2.File(path=path, mode=mode, contents=contents) for path, mode, contents in files],
        object_version=[service_pb2.ObjectVersion(id=i, version=v) for i, v in (versions or {}).items()],
        error=service_pb2.Error(code=error_code),
    )


class StubProvider(service_pb2_grpc.CSIDriverProviderServicer):
    """A provider on `<directory>/vault.sock`; a context manager. `requests` counts the Mounts served."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket_path = directory / "vault.sock"
        self.requests = 0
        self._lock = threading.Lock()
        self._canned: Any = None
        self._upstream: Any = None
        self._replaying = False
        self._channel: grpc.Channel | None = None
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=4, thread_name_prefix="stub-provider"),
            options=[("grpc.max_send_message_length", _MAX_MESSAGE_BYTES)],
        )
        service_pb2_grpc.add_CSIDriverProviderServicer_to_server(self, self._server)

    def __enter__(self) -> StubProvider:
        self._server.add_insecure_port(f"unix://{self.socket_path}")
        self._server.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.stop(grace=None)
        if self._channel is not None:
            self._channel.close()
        self.socket_path.unlink(missing_ok=True)

    def answer(self, response: Any) -> None:
        """Answer every Mount with `response`."""
        with self._lock:
            self._canned, self._upstream, self._replaying = response, None, False

    def relay_to(self, socket_path: Path) -> None:
        """Forward Version and Mount to the provider at `socket_path`, keeping the last Mount answer."""
        if self._channel is not None:
            self._channel.close()
        self._channel = grpc.insecure_channel(
            f"unix://{socket_path}",
            options=[
                ("grpc.default_authority", "localhost"),
                ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
            ],
        )
        with self._lock:
            self._canned, self._replaying = None, False
            self._upstream = service_pb2_grpc.CSIDriverProviderStub(self._channel)

    def replay(self) -> None:
        """Stop forwarding Mounts: answer them with the response the last forwarded Mount got.

        Version is still forwarded, so the clients see the real provider's runtime version.
        """
        with self._lock:
            assert self._canned is not None, "nothing to replay: no Mount was relayed successfully"
            self._replaying = True

    def Version(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self._lock:
            upstream = self._upstream
        if upstream is not None:
            return upstream.Version(request, timeout=10)
        return service_pb2.VersionResponse(
            version="v1alpha1", runtime_name="stub-provider", runtime_version=_RUNTIME_VERSION
        )

    def Mount(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self._lock:
            self.requests += 1
            upstream = None if self._replaying else self._upstream
            canned = self._canned
        if upstream is None:
            assert canned is not None, "the stub provider was given no answer"
            return canned
        try:
            response = upstream.Mount(request, timeout=context.time_remaining())
        except grpc.RpcError as exc:
            context.abort(exc.code(), exc.details() or "")
        with self._lock:
            self._canned = response
        return response
