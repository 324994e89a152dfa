"""The one composition point: every long-lived object of a provider process, built from Settings.

Nothing below this module builds a collaborator of its own or falls back to a default
one, so a flag (-cache-size, -token-revoke-on-evict, -token-request-fallback, the size
limits) reaches exactly the object it configures. Per-Mount objects (the request, its
plan, its Vault session) are made by the Mount itself.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from provider.mount.leases import LeaseCache, LeaseKeeper
from provider.mount.mounter import Mounter
from provider.mount.pod_tokens import PodTokens, TokenRequester
from provider.serve.audit import AuditSink
from provider.serve.metrics import Metrics
from provider.serve.servicer import ProviderServicer
from provider.settings import Settings
from provider.vault.client import VaultClient
from provider.vault.kv_paths import KvV2Paths
from provider.vault.retry import RetryPolicy
from provider.vault.transport import TransportFactory, urllib3_transports

__all__ = [
    "FETCH_WORKERS",
    "LEASES_PER_TOKEN",
    "Provider",
    "StartupError",
    "build_provider",
    "vault_transports",
]

# Parallel Vault requests within one Mount, shared by all Mounts.
FETCH_WORKERS = 16
# Kept answers per cached token: a pod rarely has more than a few dynamic secrets, but with
# refreshInterval every distinct static read of its volume is kept too.
LEASES_PER_TOKEN = 16


class StartupError(RuntimeError):
    """The provider cannot start as configured; the message says what to fix."""


@dataclass(frozen=True)
class Provider:
    """What serves Mounts, and what must be closed when the process stops."""

    metrics: Metrics
    mounter: Mounter
    servicer: ProviderServicer
    vault: VaultClient
    fetch_pool: ThreadPoolExecutor
    audit: AuditSink | None

    def close(self) -> None:
        self.fetch_pool.shutdown(wait=False, cancel_futures=True)
        self.vault.close()
        if self.audit is not None:
            self.audit.close()


def vault_transports(settings: Settings) -> TransportFactory:
    """The transports of a serving provider: urllib3 pools, a connection per Mount slot or fetch worker."""
    return urllib3_transports(pool_size=max(settings.max_concurrent_mounts, FETCH_WORKERS))


def build_provider(
    settings: Settings, hmac_key: bytes, token_requester: TokenRequester | None, transports: TransportFactory
) -> Provider:
    """Everything a Mount needs, built once; raises StartupError for an audit log that cannot be opened.

    `transports` is `vault_transports(settings)` when serving; in-process tests give their own.
    """
    audit = _audit_sink(settings)
    metrics = Metrics()
    vault = VaultClient(transports, metrics, RetryPolicy())
    fetch_pool = ThreadPoolExecutor(FETCH_WORKERS, thread_name_prefix="vault-fetch")
    tokens = PodTokens(vault, settings.cache_size, metrics, token_requester, settings.token_revoke_on_evict)
    lease_cache = LeaseCache(max(settings.cache_size, 0) * LEASES_PER_TOKEN)
    leases = LeaseKeeper(lease_cache, metrics)
    metrics.observe_caches(tokens.cached, lease_cache.census)
    mounter = Mounter(settings, vault, hmac_key, fetch_pool, tokens, leases, KvV2Paths(), metrics)
    servicer = ProviderServicer(
        mounter,
        metrics,
        audit,
        max_concurrent_mounts=settings.max_concurrent_mounts,
        max_response_bytes=settings.max_response_bytes,
        max_file_bytes=settings.max_file_bytes,
    )
    return Provider(metrics, mounter, servicer, vault, fetch_pool, audit)


def _audit_sink(settings: Settings) -> AuditSink | None:
    if not settings.audit_log:
        return None
    try:
        return AuditSink.open(settings.audit_log, settings.audit_unchanged)
    except OSError as exc:
        raise StartupError(f"cannot open -audit-log {settings.audit_log}: {exc.strerror}") from None
