"""The provider's sockets: the gRPC server bound, published, drained, and cleaned up.

One socket per provider name (`-endpoint`, and one per `-also-serve-as` name beside
it), all served by one gRPC server. Each lives on a hostPath shared with the driver
and with the next provider pod during an update. It is created owner-only from the
first instant, under a private name, and then renamed over the endpoint: the path
never disappears while an old provider hands over, a stale file is replaced only if
it is a socket, and a private name left by a failed start is removed. On exit we
remove an endpoint only if it is still the socket we created.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from provider import PROVIDER_NAME, __version__
from provider.serve import messages
from provider.serve.composition import Provider, StartupError
from provider.serve.health import HealthServer
from provider.serve.health_service import HealthService
from provider.serve.rpc_connection import Limits
from provider.serve.rpc_server import Method, RpcServer
from provider.serve.servicer import ProviderServicer
from provider.settings import Settings

__all__ = ["MAX_REQUEST_BYTES", "ProviderServer", "SocketError", "methods_for"]

log = logging.getLogger("provider.server")

SOCKET_MODE = 0o600
# gRPC's default receive limit; the driver's requests (attributes, secrets) are far smaller.
MAX_REQUEST_BYTES = 4 * 1024 * 1024


class SocketError(StartupError):
    """The endpoint path cannot be used for our socket."""


@dataclass(frozen=True)
class _SocketIdentity:
    device: int
    inode: int


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def _check_replaceable(path: Path) -> bool:
    """Whether an old socket is there; anything else at the path is an error."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(info.st_mode):
        raise SocketError(f"{path} exists and is not a socket; refusing to replace it")
    return True


class _Endpoint:
    """One socket path the server publishes, under a private name until it is renamed over the path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.private = path.with_name(f".{path.name}.{os.getpid()}")
        self.replacing = False
        self.identity: _SocketIdentity | None = None


def methods_for(servicer: ProviderServicer, health: HealthService) -> dict[str, Method]:
    """The gRPC methods a provider socket answers, by their HTTP/2 paths."""
    return {
        "/v1alpha1.CSIDriverProvider/Version": Method(
            messages.VersionRequest.decode, servicer.Version, messages.VersionResponse.encode
        ),
        "/v1alpha1.CSIDriverProvider/Mount": Method(
            messages.MountRequest.decode, servicer.Mount, messages.MountResponse.encode
        ),
        "/grpc.health.v1.Health/Check": Method(
            messages.HealthCheckRequest.decode, health.Check, messages.HealthCheckResponse.encode
        ),
    }


class ProviderServer:
    """The gRPC server on its unix sockets (-endpoint, -also-serve-as), serving what `composition` built."""

    def __init__(self, settings: Settings, provider: Provider) -> None:
        self._settings = settings
        # One gRPC server, one servicer: each provider name is just another door to it.
        self._endpoints = [_Endpoint(Path(path)) for path in settings.endpoints]
        self._path = self._endpoints[0].path
        self._provider = provider
        self.metrics = provider.metrics
        self._health = HealthService()
        # Workers beyond the Mount slots keep Version and health answering while Mounts wait.
        self._server = RpcServer(
            methods_for(provider.servicer, self._health),
            workers=settings.max_concurrent_mounts + 4,
            limits=Limits(
                max_receive_bytes=MAX_REQUEST_BYTES, max_send_bytes=settings.max_response_bytes * 2
            ),
        )
        self._http = (
            HealthServer(settings.health_addr, self._path, self.metrics) if settings.health_addr else None
        )

    @property
    def path(self) -> Path:
        return self._path

    def start(self) -> None:
        """Bind everything, then publish the sockets; on any failure nothing is left behind."""
        for endpoint in self._endpoints:
            endpoint.path.parent.mkdir(parents=True, exist_ok=True)
            endpoint.replacing = _check_replaceable(endpoint.path)
            endpoint.private.unlink(missing_ok=True)
        # Born owner-only: there is no moment where another user could connect.
        with _umask(0o077):
            for endpoint in self._endpoints:
                self._bind(endpoint)
            self._server.start()
        try:
            for endpoint in self._endpoints:
                os.chmod(endpoint.private, SOCKET_MODE)
                info = endpoint.private.lstat()
                endpoint.identity = _SocketIdentity(info.st_dev, info.st_ino)
            if self._http is not None:
                try:
                    self._http.start()
                except OSError as exc:
                    raise StartupError(
                        f"cannot serve health on {self._settings.health_addr}: {exc.strerror}"
                    ) from None
        except BaseException:
            self._release(grace_seconds=0)
            raise
        for service in ("", "v1alpha1.CSIDriverProvider"):
            self._health.set(service, messages.SERVING)
        # A crashed provider's socket, or a live one during an update: the old one
        # keeps the connections it has, new ones come to us.
        for endpoint in self._endpoints:
            os.replace(endpoint.private, endpoint.path)
            if endpoint.replacing:
                log.info("replaced an older socket at %s", endpoint.path)
            log.info("serving %s %s on %s", PROVIDER_NAME, __version__, endpoint.path)

    def _bind(self, endpoint: _Endpoint) -> None:
        try:
            self._server.listen(str(endpoint.private))
        except OSError:
            # A path over the 107 bytes of sun_path, or a directory we cannot write.
            self._server.stop(0)
            for other in self._endpoints:
                other.private.unlink(missing_ok=True)
            raise SocketError(
                f"cannot listen on {endpoint.private}: is its directory writable, the path at most 107 bytes?"
            ) from None

    def stop(self, grace_seconds: float) -> None:
        """Refuse new RPCs, let in-flight Mounts finish within the grace, then clean up."""
        if self._http is not None:
            self._http.draining()
        self._health.enter_graceful_shutdown()
        self._release(grace_seconds)
        self._remove_socket_if_ours()

    def _release(self, grace_seconds: float) -> None:
        self._server.stop(grace_seconds)
        for endpoint in self._endpoints:
            endpoint.private.unlink(missing_ok=True)  # only still there when start failed
        if self._http is not None:
            self._http.stop()
        self._provider.close()

    def _remove_socket_if_ours(self) -> None:
        for endpoint in self._endpoints:
            try:
                info = endpoint.path.lstat()
            except FileNotFoundError:
                continue
            if endpoint.identity == _SocketIdentity(info.st_dev, info.st_ino):
                endpoint.path.unlink(missing_ok=True)
            else:
                log.info("leaving %s in place: another provider owns it now", endpoint.path)
