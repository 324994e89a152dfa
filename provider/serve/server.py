"""The long-running provider: builds the long-lived objects once, serves the socket, drains.

The socket lives on a hostPath shared with the driver and with the next provider
pod during an update. It is created owner-only from the first instant, under a
private name, and then renamed over the endpoint: the path never disappears
while an old provider hands over, a stale file is replaced only if it is a socket,
and gRPC's own clean-up at shutdown (it unlinks the path it bound, whoever owns
that path by then) only ever touches our private name. On exit we remove the
endpoint only if it is still the socket we created.
"""

from __future__ import annotations

import logging
import os
import signal
import stat
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from provider import PROVIDER_NAME, __version__
from provider.mount.mounter import Mounter
from provider.mount.pod_tokens import PodAuthenticator, TokenRequester
from provider.serve.audit import AuditSink
from provider.serve.health import HealthServer
from provider.serve.hmac_key import HmacKeyError, key_from_secret, load_key_file, new_key
from provider.serve.kube import KubeClient, KubeError
from provider.serve.metrics import Metrics
from provider.serve.servicer import ProviderServicer
from provider.settings import Settings
from provider.v1alpha1 import service_pb2_grpc
from provider.vault.client import VaultClient

__all__ = ["ProviderServer", "SocketError", "StartupError", "run"]

log = logging.getLogger("provider.server")

# Parallel Vault requests within one Mount, shared by all Mounts.
FETCH_WORKERS = 16
SOCKET_MODE = 0o600


class StartupError(RuntimeError):
    """The provider cannot start as configured; the message says what to fix."""


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


class ProviderServer:
    """The gRPC server on a unix socket, with the objects it needs for its lifetime."""

    def __init__(
        self,
        settings: Settings,
        hmac_key: bytes,
        metrics: Metrics | None = None,
        token_requester: TokenRequester | None = None,
    ) -> None:
        self._settings = settings
        self._path = Path(settings.endpoint)
        self._audit = _audit_sink(settings)
        self.metrics = metrics or Metrics()
        self._vault = VaultClient(
            pool_size=max(settings.max_concurrent_mounts, FETCH_WORKERS), metrics=self.metrics
        )
        self._fetch_pool = ThreadPoolExecutor(FETCH_WORKERS, thread_name_prefix="vault-fetch")
        authenticator = PodAuthenticator(
            self._vault, settings.cache_size, self.metrics, token_requester, settings.token_revoke_on_evict
        )
        mounter = Mounter(settings, self._vault, hmac_key, self._fetch_pool, self.metrics, authenticator)
        servicer = ProviderServicer(
            mounter,
            self.metrics,
            settings.max_concurrent_mounts,
            settings.max_response_bytes,
            settings.max_file_bytes,
            audit=self._audit,
        )
        # Workers beyond the Mount slots keep Version and health answering while Mounts wait.
        self._server = grpc.server(
            ThreadPoolExecutor(settings.max_concurrent_mounts + 4, thread_name_prefix="grpc"),
            options=[("grpc.max_send_message_length", settings.max_response_bytes * 2)],
        )
        service_pb2_grpc.add_CSIDriverProviderServicer_to_server(servicer, self._server)  # type: ignore[no-untyped-call]
        self._health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        self._identity: _SocketIdentity | None = None
        self._http = (
            HealthServer(settings.health_addr, self._path, self.metrics) if settings.health_addr else None
        )

    @property
    def path(self) -> Path:
        return self._path

    def start(self) -> None:
        """Bind everything, then publish the socket; on any failure nothing is left behind."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        replacing = _check_replaceable(self._path)
        private = self._path.with_name(f".{self._path.name}.{os.getpid()}")
        private.unlink(missing_ok=True)
        # Born owner-only: there is no moment where another user could connect.
        with _umask(0o077):
            bound = self._server.add_insecure_port(f"unix://{private}")
            if not bound:
                raise SocketError(f"cannot listen on {private}")
            self._server.start()
        try:
            os.chmod(private, SOCKET_MODE)
            info = private.lstat()
            self._identity = _SocketIdentity(info.st_dev, info.st_ino)
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
            self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        # A crashed provider's socket, or a live one during an update: the old one
        # keeps the connections it has, new ones come to us.
        os.replace(private, self._path)
        if replacing:
            log.info("replaced an older socket at %s", self._path)
        log.info("serving %s %s on %s", PROVIDER_NAME, __version__, self._path)

    def stop(self, grace_seconds: float) -> None:
        """Refuse new RPCs, let in-flight Mounts finish within the grace, then clean up."""
        if self._http is not None:
            self._http.draining()
        self._health.enter_graceful_shutdown()
        self._release(grace_seconds)
        self._remove_socket_if_ours()

    def _release(self, grace_seconds: float) -> None:
        self._server.stop(grace_seconds).wait()
        if self._http is not None:
            self._http.stop()
        self._fetch_pool.shutdown(wait=False, cancel_futures=True)
        self._vault.close()
        if self._audit is not None:
            self._audit.close()

    def _remove_socket_if_ours(self) -> None:
        try:
            info = self._path.lstat()
        except FileNotFoundError:
            return
        if self._identity == _SocketIdentity(info.st_dev, info.st_ino):
            self._path.unlink(missing_ok=True)
        else:
            log.info("leaving %s in place: another provider owns it now", self._path)


def _audit_sink(settings: Settings) -> AuditSink | None:
    if not settings.audit_log:
        return None
    try:
        return AuditSink.open(settings.audit_log, settings.audit_unchanged)
    except OSError as exc:
        raise StartupError(f"cannot open -audit-log {settings.audit_log}: {exc.strerror}") from None


def _hmac_key(settings: Settings, kube: KubeClient | None) -> bytes:
    if settings.hmac_key_file:
        return load_key_file(settings.hmac_key_file)
    if kube is not None:
        try:
            namespace = kube.own_namespace()
        except KubeError as exc:
            raise HmacKeyError(str(exc)) from None
        return key_from_secret(kube, namespace, settings.hmac_secret_name)
    log.warning(
        "not in a cluster and no -hmac-key-file: using a key generated at start, so object "
        "versions change when the provider restarts and differ between nodes"
    )
    return new_key()


def _token_requester(settings: Settings, kube: KubeClient | None) -> TokenRequester | None:
    if not settings.token_request_fallback:
        return None
    if kube is None:
        raise StartupError("-token-request-fallback needs the Kubernetes API: run the provider in a cluster")
    return kube.create_service_account_token


def run(settings: Settings) -> int:
    """Serve until SIGTERM or SIGINT; returns the process exit code."""
    kube = KubeClient.in_cluster()
    try:
        server = ProviderServer(
            settings, _hmac_key(settings, kube), token_requester=_token_requester(settings, kube)
        )
        server.start()
    except (HmacKeyError, StartupError, OSError, ValueError) as exc:
        log.error("cannot start: %s", exc)
        return 1

    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info(
            "received %s, draining for up to %.0fs",
            signal.Signals(signum).name,
            settings.shutdown_grace_seconds,
        )
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stopping.wait(3600):
        pass
    server.stop(settings.shutdown_grace_seconds)
    log.info("stopped")
    # Everything is cleaned up. A Mount still waiting on a Vault that does not answer,
    # past the grace, would hold the process until its own deadline (the executors'
    # workers are joined at interpreter exit), so leave without waiting for it.
    logging.shutdown()
    os._exit(0)
