"""A Vault token for the pod of a Mount: cached, renewed, or obtained by logging in as the pod.

Sits between the Mount orchestration and the raw login (`vault.token_api`): picks the
pod's JWT (from the driver, or the opt-in TokenRequest fallback), keys the token cache
(`token_cache`) on the pod's identity and that exact JWT, counts logins, throttles
re-logins after a refusal, and optionally revokes tokens the cache lets go of.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from provider.errors import PermissionDenied, ProviderError
from provider.mount.counters import MountCounters
from provider.mount.per_volume import PerVolume
from provider.mount.token_cache import CachedToken, JwtDigester, TokenCache, TokenKey, cached_token
from provider.request.jwt_claims import jwt_pod_uid
from provider.request.mount_request import MountConfig
from provider.vault.client import VaultClient
from provider.vault.deadline import Deadline
from provider.vault.session import VaultSession
from provider.vault.target import VaultTarget
from provider.vault.token_api import login, lookup_self, renew_self, revoke_self

__all__ = ["PodToken", "PodTokens", "TokenRequester"]

# The API server's minimum; the token is used once, for the login right after.
TOKEN_REQUEST_SECONDS = 600
# After a cached token was refused, at most one fresh login per pod in this time.
RELOGIN_INTERVAL_SECONDS = 300.0
MAX_RELOGIN_MEMORY = 10_000
REVOKE_TIMEOUT_SECONDS = 5.0

log = logging.getLogger("provider.auth")


class TokenRequester(Protocol):
    """Creates a service-account token bound to a pod; raises ProviderError (PermissionDenied on 403)."""

    def __call__(
        self, namespace: str, service_account: str, audience: str, pod_name: str, pod_uid: str, seconds: int
    ) -> str: ...


@dataclass(frozen=True)
class PodToken:
    """The Vault token a Mount uses for its pod, and how it was had."""

    jwt: str = field(repr=False)  # the JWT that proves it: the driver's, or a TokenRequest's
    key: TokenKey
    token: CachedToken
    from_cache: bool  # served without a login (a refusal may then mean it was revoked)


class PodTokens:
    """Vault tokens for pods; one instance per process, shared by all Mounts."""

    def __init__(
        self,
        vault: VaultClient,
        cache_size: int,
        counters: MountCounters,
        token_requester: TokenRequester | None,
        revoke_on_discard: bool,
        jwt_digest: JwtDigester,
        on_refused: Callable[[CachedToken], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._vault = vault
        self._jwt_digest = jwt_digest
        self._counters = counters
        self._token_requester = token_requester
        self._clock = clock
        self._revoke_on_discard = revoke_on_discard
        self._origins: dict[str, VaultTarget] = {}
        # Each volume's token key and JWT digest, while its target, auth mount and JWT stay the same.
        self._keyed: PerVolume[tuple[TokenKey, str]] = PerVolume()
        self._relogins: dict[TokenKey, float] = {}
        self._relogin_lock = threading.Lock()
        self._cache = TokenCache(
            cache_size, clock, self._discarded if revoke_on_discard else None, on_refused
        )

    @property
    def cache(self) -> TokenCache:
        """The token cache, for the restart state to save and restore."""
        return self._cache

    @property
    def requests_tokens(self) -> bool:
        """Whether a Mount without a driver token can get one from the TokenRequest API."""
        return self._token_requester is not None

    def token_for(
        self, config: MountConfig, target: VaultTarget, auth_mount: str, deadline: Deadline
    ) -> PodToken:
        """The pod's token: cached, renewed, or from a login with its JWT."""
        jwt = config.jwt or self._request_jwt(config)
        key, digest = self._key_and_digest(config, target, auth_mount, jwt)
        session = VaultSession(self._vault, target, deadline)

        def renew(entry: CachedToken) -> CachedToken | None:
            granted = renew_self(session.with_token(entry.value), entry.lease_seconds)
            if granted is None or self._clock() + granted.lease_seconds <= entry.expires_at:
                return None  # refused, or capped by the token's max TTL: log in again
            renewed = cached_token(
                entry.value,
                entry.identity,
                granted.lease_seconds,
                granted.renewable,
                self._clock(),
                frozenset(),
            )
            return replace(renewed, proven_jwts=entry.proven_jwts)

        token, from_cache = self._cache.get(
            key,
            digest,
            lambda: self._login(config, jwt, session, auth_mount, digest),
            renew,
            lambda entry: lookup_self(session.with_token(entry.value)),
        )
        self._counters.cache_lookup("token", "hit" if from_cache else "miss")
        return PodToken(jwt, key, token, from_cache)

    def _key_and_digest(
        self, config: MountConfig, target: VaultTarget, auth_mount: str, jwt: str
    ) -> tuple[TokenKey, str]:
        """The cache key and the JWT's digest; a volume's polls share one configuration, so kept for it."""
        pod = config.pod
        return self._keyed.get(
            config,
            (target, auth_mount, jwt),
            lambda: (
                TokenKey(
                    target.address,
                    target.namespace,
                    auth_mount,
                    config.role,
                    pod.namespace,
                    pod.name,
                    pod.uid,
                    pod.service_account,
                ),
                self._jwt_digest(jwt),
            ),
        )

    def relogin(
        self, config: MountConfig, target: VaultTarget, auth_mount: str, stale: PodToken, deadline: Deadline
    ) -> PodToken | None:
        """A fresh login after Vault refused a cached token (it may have been revoked).

        None when this pod already re-logged in recently: then the refusal is the
        policy's, and logging in on every poll would only pile up tokens.
        """
        now = self._clock()
        with self._relogin_lock:
            if now - self._relogins.get(stale.key, -math.inf) < RELOGIN_INTERVAL_SECONDS:
                return None
            self._relogins[stale.key] = now
            if len(self._relogins) > MAX_RELOGIN_MEMORY:
                self._relogins = {
                    k: t for k, t in self._relogins.items() if now - t < RELOGIN_INTERVAL_SECONDS
                }
        self._cache.invalidate(stale.key, stale.token)
        digest = self._jwt_digest(stale.jwt)
        session = VaultSession(self._vault, target, deadline)
        token, _ = self._cache.get(
            stale.key,
            digest,
            lambda: self._login(config, stale.jwt, session, auth_mount, digest),
            lambda _: None,
        )
        return PodToken(stale.jwt, stale.key, token, from_cache=False)

    def _login(
        self, config: MountConfig, jwt: str, session: VaultSession, auth_mount: str, digest: str
    ) -> CachedToken:
        pod = config.pod
        try:
            token = login(session, auth_mount, config.role, jwt, f"{pod.namespace}/{pod.service_account}")
        except PermissionDenied:
            self._counters.login("denied")
            raise
        except ProviderError:
            self._counters.login("error")
            raise
        self._counters.login("success")
        if self._revoke_on_discard:
            self._origins[token.value] = session.target
        claimed = jwt_pod_uid(jwt)
        if claimed is not None and claimed != pod.uid:
            # Vault accepted the JWT, so its claims are genuine: it belongs to another pod.
            if self._revoke_on_discard:
                self._discarded(cached_token(token.value, "", 0, False, 0.0, frozenset()))
            raise PermissionDenied(
                f"the service-account token presented for pod {pod.describe()} was issued "
                "for another pod; refusing to serve that pod's secrets"
            )
        return cached_token(
            token.value,
            token.identity,
            token.lease_seconds,
            token.renewable,
            self._clock(),
            frozenset([digest]),
        )

    def _request_jwt(self, config: MountConfig) -> str:
        """The TokenRequest fallback: a short-lived token for the pod's service account, bound to the pod."""
        if self._token_requester is None:
            raise AssertionError("parse_mount_request allows a missing token only with a requester")
        pod = config.pod
        try:
            return self._token_requester(
                pod.namespace, pod.service_account, config.audience, pod.name, pod.uid, TOKEN_REQUEST_SECONDS
            )
        except ProviderError as exc:
            missing = f"the driver passed no token for audience {config.audience!r}"
            raise exc.prefixed(f"{missing} and the TokenRequest fallback failed") from None

    def _discarded(self, token: CachedToken) -> None:
        """Revoke a token the cache let go of (and with it the leases it obtained), off the Mount path."""
        target = self._origins.pop(token.value, None)
        if target is not None:
            session = VaultSession(self._vault, target, Deadline(REVOKE_TIMEOUT_SECONDS), token.value)
            threading.Thread(target=revoke_self, args=(session,), name="revoke-token", daemon=True).start()
