"""The provider process: the HMAC key, the composition, the socket, and a drain on SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

from provider.mount.pod_tokens import TokenRequester
from provider.serve.composition import StartupError, build_provider, vault_transports
from provider.serve.hmac_key import HmacKeyError, key_from_secret, load_key_file, new_key
from provider.serve.kube import KubeClient, KubeError, token_requester
from provider.serve.server import ProviderServer
from provider.settings import Settings

__all__ = ["run"]

log = logging.getLogger("provider.server")


def run(settings: Settings) -> int:
    """Serve until SIGTERM or SIGINT; returns the process exit code."""
    kube = KubeClient.in_cluster()
    try:
        provider = build_provider(
            settings, _hmac_key(settings, kube), _token_requester(settings, kube), vault_transports(settings)
        )
        server = ProviderServer(settings, provider)
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
        "versions change when the provider restarts and differ between nodes%s",
        ", and -state-dir is ignored at the next start" if settings.state_dir else "",
    )
    return new_key()


def _token_requester(settings: Settings, kube: KubeClient | None) -> TokenRequester | None:
    if not settings.token_request_fallback:
        return None
    if kube is None:
        raise StartupError("-token-request-fallback needs the Kubernetes API: run the provider in a cluster")
    return token_requester(kube)
