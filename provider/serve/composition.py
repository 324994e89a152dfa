"""The one composition point: every long-lived object of a provider process, built from Settings.

Nothing below this module builds a collaborator of its own or falls back to a default
one, so a flag (-cache-size, -token-revoke-on-evict, -token-request-fallback, the size
limits, -state-dir) reaches exactly the object it configures. Per-Mount objects (the request, its
plan, its Vault session) are made by the Mount itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from provider.mount.lease_cache import LeaseCache, token_owner
from provider.mount.leases import LeaseKeeper
from provider.mount.mounter import Mounter
from provider.mount.pod_tokens import PodTokens, TokenRequester
from provider.mount.token_cache import CachedToken, JwtDigester, TokenCache
from provider.serve.audit import AuditSink
from provider.serve.hmac_key import JWT_DIGEST_LABEL, derive_key
from provider.serve.metrics import Metrics
from provider.serve.servicer import ProviderServicer
from provider.settings import Settings
from provider.vault.client import VaultClient
from provider.vault.kv_paths import KvV2Paths
from provider.vault.retry import RetryPolicy
from provider.vault.transport import TransportFactory, http11_transports

if TYPE_CHECKING:
    # Imported for real only with -state-dir: it brings `cryptography`.
    from provider.serve.restart_state import RestartState

__all__ = [
    "LEASES_PER_TOKEN",
    "Provider",
    "StartupError",
    "build_provider",
    "vault_transports",
]

# Idle keep-alive connections kept per Vault node, at the least: one Mount's reads go out
# together, a connection each.
MIN_IDLE_CONNECTIONS = 16
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
    audit: AuditSink | None
    state: RestartState | None = None

    def close(self) -> None:
        if self.state is not None:
            self.state.close()
        self.vault.close()
        if self.audit is not None:
            self.audit.close()


def vault_transports(settings: Settings) -> TransportFactory:
    """The transports of a serving provider: HTTP/1.1 pools, idle connections for every Mount slot."""
    return http11_transports(pool_size=max(settings.max_concurrent_mounts, MIN_IDLE_CONNECTIONS))


def build_provider(
    settings: Settings, hmac_key: bytes, token_requester: TokenRequester | None, transports: TransportFactory
) -> Provider:
    """Everything a Mount needs, built once, the caches restored from -state-dir if it is set.

    Raises StartupError for an audit log that cannot be opened.

    `transports` is `vault_transports(settings)` when serving; in-process tests give their own.
    """
    audit = _audit_sink(settings)
    metrics = Metrics()
    vault = VaultClient(transports, metrics, RetryPolicy())
    lease_cache = LeaseCache(max(settings.cache_size, 0) * LEASES_PER_TOKEN)

    def refused(token: CachedToken) -> None:
        # A restored token Vault no longer knows: what it obtained died with it.
        lease_cache.forget_owner(token_owner(token.value))

    tokens = PodTokens(
        vault,
        settings.cache_size,
        metrics,
        token_requester,
        settings.token_revoke_on_evict,
        JwtDigester(derive_key(hmac_key, JWT_DIGEST_LABEL)),
        refused,
    )
    leases = LeaseKeeper(lease_cache, metrics)
    metrics.observe_caches(tokens.cache.__len__, lease_cache.census)
    mounter = Mounter(settings, vault, hmac_key, tokens, leases, KvV2Paths(), metrics)
    servicer = ProviderServicer(
        mounter,
        metrics,
        audit,
        max_concurrent_mounts=settings.max_concurrent_mounts,
        max_response_bytes=settings.max_response_bytes,
        max_file_bytes=settings.max_file_bytes,
        default_audience=settings.audience,
    )
    state = _restart_state(settings, hmac_key, tokens.cache, lease_cache, metrics)
    return Provider(metrics, mounter, servicer, vault, audit, state)


def _restart_state(
    settings: Settings, hmac_key: bytes, tokens: TokenCache, leases: LeaseCache, metrics: Metrics
) -> RestartState | None:
    """The restart state, restored and saving, or None without -state-dir."""
    if not settings.state_dir:
        return None
    from provider.serve.restart_state import RestartState
    from provider.serve.state_store import StateKeys

    state = RestartState(Path(settings.state_dir), StateKeys.derive(hmac_key), tokens, leases, metrics)
    state.restore()
    state.start()
    return state


def _audit_sink(settings: Settings) -> AuditSink | None:
    if not settings.audit_log:
        return None
    try:
        return AuditSink.open(settings.audit_log, settings.audit_unchanged)
    except OSError as exc:
        raise StartupError(f"cannot open -audit-log {settings.audit_log}: {exc.strerror}") from None
