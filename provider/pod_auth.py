"""A Vault token for the pod of a Mount: cached, renewed, or obtained by logging in as the pod.

Sits between the Mount orchestration and the raw login: picks the pod's JWT (from
the driver, or the opt-in TokenRequest fallback), keys the token cache on the pod's
identity and that exact JWT, counts logins, and optionally revokes tokens the cache
lets go of.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from provider.auth import login, renew_token, revoke_token
from provider.connection import VaultConnection
from provider.deadline import Deadline
from provider.errors import KubernetesUnavailable, PermissionDenied, ProviderError
from provider.kube import KubeError
from provider.metrics import Metrics
from provider.spc import MountConfig
from provider.token_cache import CachedToken, TokenCache, TokenKey, cached_token, jwt_digest
from provider.vault import VaultClient

__all__ = ["PodAuthenticator", "TokenRequester"]

# The API server's minimum; the token is used once, for the login right after.
TOKEN_REQUEST_SECONDS = 600
REVOKE_TIMEOUT_SECONDS = 5.0

log = logging.getLogger("provider.auth")


class TokenRequester(Protocol):
    """Creates a service-account token: (namespace, service account, audience, pod name, pod uid, seconds)."""

    def __call__(
        self, namespace: str, service_account: str, audience: str, pod_name: str, pod_uid: str, seconds: int
    ) -> str: ...


class PodAuthenticator:
    """Vault tokens for pods; one instance per process, shared by all Mounts."""

    def __init__(
        self,
        vault: VaultClient,
        cache_size: int,
        metrics: Metrics,
        token_requester: TokenRequester | None = None,
        revoke_on_discard: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._vault = vault
        self._metrics = metrics
        self._token_requester = token_requester
        self._clock = clock
        self._revoke_on_discard = revoke_on_discard
        self._origins: dict[str, VaultConnection] = {}
        self._cache = TokenCache(cache_size, clock, self._discarded if revoke_on_discard else None)

    @property
    def requests_tokens(self) -> bool:
        """Whether a Mount without a driver token can get one from the TokenRequest API."""
        return self._token_requester is not None

    def token_for(
        self, config: MountConfig, connection: VaultConnection, auth_mount: str, deadline: Deadline
    ) -> tuple[MountConfig, TokenKey, CachedToken, bool]:
        """(config with the JWT used, cache key, token, whether the token came from the cache)."""
        if not config.jwt:
            config = replace(config, jwt=self._request_jwt(config))
        pod = config.pod
        key = TokenKey(
            connection.address,
            connection.namespace,
            auth_mount,
            config.role,
            pod.namespace,
            pod.name,
            pod.uid,
            pod.service_account,
            jwt_digest(config.jwt),
        )

        def fresh_login() -> CachedToken:
            token = self._login(config, connection, auth_mount, deadline)
            if self._revoke_on_discard:
                self._origins[token.value] = connection
            return token

        def renew(entry: CachedToken) -> CachedToken | None:
            granted = renew_token(self._vault, connection, entry.value, entry.lease_seconds, deadline)
            if granted is None or self._clock() + granted[0] <= entry.expires_at:
                return None  # refused, or capped by the token's max TTL: log in again
            return cached_token(entry.value, entry.identity, granted[0], granted[1], self._clock())

        token, from_cache = self._cache.get(key, fresh_login, renew)
        self._metrics.cache_lookups.labels("token", "hit" if from_cache else "miss").inc()
        return config, key, token, from_cache

    def relogin(
        self,
        config: MountConfig,
        connection: VaultConnection,
        auth_mount: str,
        key: TokenKey,
        stale: CachedToken,
        deadline: Deadline,
    ) -> CachedToken:
        """A fresh login after Vault refused a cached token (it may have been revoked)."""
        self._cache.invalidate(key, stale)
        token, _ = self._cache.get(
            key, lambda: self._login(config, connection, auth_mount, deadline), lambda _: None
        )
        return token

    def _login(
        self, config: MountConfig, connection: VaultConnection, auth_mount: str, deadline: Deadline
    ) -> CachedToken:
        try:
            token = login(self._vault, connection, config, auth_mount, deadline)
        except PermissionDenied:
            self._metrics.login("denied")
            raise
        except ProviderError:
            self._metrics.login("error")
            raise
        self._metrics.login("success")
        return cached_token(token.value, token.identity, token.lease_seconds, token.renewable, self._clock())

    def _request_jwt(self, config: MountConfig) -> str:
        """The TokenRequest fallback: a short-lived token for the pod's service account, bound to the pod."""
        if self._token_requester is None:
            raise AssertionError("parse_mount_request allows a missing token only with a requester")
        pod = config.pod
        try:
            return self._token_requester(
                pod.namespace, pod.service_account, config.audience, pod.name, pod.uid, TOKEN_REQUEST_SECONDS
            )
        except KubeError as exc:
            message = (
                f"the driver passed no token for audience {config.audience!r} "
                f"and the TokenRequest fallback failed: {exc}"
            )
            if exc.status == 403:
                raise PermissionDenied(message) from None
            raise KubernetesUnavailable(message) from None

    def _discarded(self, token: CachedToken) -> None:
        """Revoke a token the cache let go of (and with it the leases it obtained), off the Mount path."""
        connection = self._origins.pop(token.value, None)
        if connection is not None:
            threading.Thread(
                target=revoke_token,
                args=(self._vault, connection, token.value, REVOKE_TIMEOUT_SECONDS),
                name="revoke-token",
                daemon=True,
            ).start()
