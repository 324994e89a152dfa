"""One transport per Vault address and TLS settings, made anew when its TLS files change.

Shared by every Mount: a transport holds a node's pool of keep-alive connections. When
the CA or client certificate files of an https target change on disk (cert-manager
rotating them), the next request gets a transport built from the new files and the old
one is closed; a half-written rotation (a certificate without its new key) keeps the
old files' transport until the new ones are whole. Files are compared at most every
RECHECK_SECONDS, so a warm poll costs a dictionary look-up.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace

from provider.errors import ProviderError
from provider.settings import TlsSettings
from provider.vault.target import VaultTarget
from provider.vault.tls_files import RECHECK_SECONDS, FileState, has_tls_files, tls_files_state
from provider.vault.transport import Transport, TransportFactory

__all__ = ["Transports"]

log = logging.getLogger("provider.vault")


class Transports:
    """The transports of one VaultClient, keyed by address and TLS settings."""

    def __init__(self, make: TransportFactory) -> None:
        self._make_transport = make
        self._pools: dict[tuple[str, TlsSettings], _Pool] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.transport.close()
            self._pools.clear()

    def of(self, target: VaultTarget) -> Transport:
        """The transport for `target`'s address and TLS settings, made anew when its TLS files changed."""
        # The namespace is a header, not a connection property: it is not in the key.
        key = (target.address, target.tls)
        watched = target.scheme == "https" and has_tls_files(target.tls)
        now = time.monotonic()
        with self._lock:
            pool = self._pools.get(key)
            if pool is not None and (not watched or now - pool.checked_at < RECHECK_SECONDS):
                return pool.transport
        files = tls_files_state(target.tls) if watched else ()
        with self._lock:
            pool = self._pools.get(key)
            if pool is not None and (pool.files == files or None in files):
                # Unchanged, or a file missing mid-rotation: keep the pool until the new files are whole.
                self._pools[key] = replace(pool, checked_at=now)
                return pool.transport
            if pool is None:
                log.debug("new connection pool for Vault at %s (%s)", target.describe(), target.scheme)
                if target.scheme == "https" and target.tls.skip_verify:
                    log.warning("TLS certificate verification is disabled for Vault at %s", target.describe())
            else:
                log.info(
                    "TLS files for Vault at %s changed on disk: new connections use them", target.describe()
                )
            try:
                transport = self._make_transport(target)
            except ProviderError as exc:
                if pool is None:
                    raise
                # Half-rotated (a certificate without its new key): the old files' pool until it settles.
                log.warning("keeping the previous TLS setup for Vault at %s: %s", target.describe(), exc)
                self._pools[key] = replace(pool, checked_at=now)
                return pool.transport
            self._pools[key] = _Pool(transport, files, now)
        if pool is not None:
            pool.transport.close()  # idle connections now; ones in use close when they come back
        return transport


@dataclass(frozen=True)
class _Pool:
    """A node's transport, the TLS files it was made from, and when they were last compared."""

    transport: Transport
    files: FileState
    checked_at: float
