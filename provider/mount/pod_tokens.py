"""A Vault token for the pod of a Mount: cached, renewed, or obtained by logging in as the pod.

Sits between the Mount orchestration and the raw login: picks the pod's JWT (from
the driver, or the opt-in TokenRequest fallback), keys the token cache on the pod's
identity and that exact JWT, counts logins, and optionally revokes tokens the cache
lets go of.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from provider.errors import KubernetesUnavailable, PermissionDenied, ProviderError
from provider.mount.token_cache import CachedToken, TokenCache, TokenKey, cached_token, jwt_digest
from provider.request.mount_request import MountConfig
from provider.serve.kube import KubeError
from provider.serve.metrics import Metrics
from provider.vault.client import VaultClient
from provider.vault.deadline import Deadline
from provider.vault.target import VaultConnection
from provider.vault.token_api import login, renew_token, revoke_token

__all__ = ["PodAuthenticator", "TokenRequester", "jwt_claims", "jwt_pod_uid"]

# The API server's minimum; the token is used once, for the login right after.
TOKEN_REQUEST_SECONDS = 600
# After a cached token was refused, at most one fresh login per pod in this time.
RELOGIN_INTERVAL_SECONDS = 300.0
MAX_RELOGIN_MEMORY = 10_000
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
        self._relogins: dict[TokenKey, float] = {}
        self._relogin_lock = threading.Lock()
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
        )
        digest = jwt_digest(config.jwt)

        def renew(entry: CachedToken) -> CachedToken | None:
            granted = renew_token(self._vault, connection, entry.value, entry.lease_seconds, deadline)
            if granted is None or self._clock() + granted[0] <= entry.expires_at:
                return None  # refused, or capped by the token's max TTL: log in again
            renewed = cached_token(
                entry.value, entry.identity, granted[0], granted[1], self._clock(), frozenset()
            )
            return replace(renewed, proven_jwts=entry.proven_jwts)

        token, from_cache = self._cache.get(
            key, digest, lambda: self._login(config, connection, auth_mount, digest, deadline), renew
        )
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
    ) -> CachedToken | None:
        """A fresh login after Vault refused a cached token (it may have been revoked).

        None when this pod already re-logged in recently: then the refusal is the
        policy's, and logging in on every poll would only pile up tokens.
        """
        now = self._clock()
        with self._relogin_lock:
            if now - self._relogins.get(key, -math.inf) < RELOGIN_INTERVAL_SECONDS:
                return None
            self._relogins[key] = now
            if len(self._relogins) > MAX_RELOGIN_MEMORY:
                self._relogins = {
                    k: t for k, t in self._relogins.items() if now - t < RELOGIN_INTERVAL_SECONDS
                }
        self._cache.invalidate(key, stale)
        digest = jwt_digest(config.jwt)
        token, _ = self._cache.get(
            key, digest, lambda: self._login(config, connection, auth_mount, digest, deadline), lambda _: None
        )
        return token

    def _login(
        self,
        config: MountConfig,
        connection: VaultConnection,
        auth_mount: str,
        digest: str,
        deadline: Deadline,
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
        if self._revoke_on_discard:
            self._origins[token.value] = connection
        claimed = jwt_pod_uid(config.jwt)
        if claimed is not None and claimed != config.pod.uid:
            # Vault accepted the JWT, so its claims are genuine: it belongs to another pod.
            if self._revoke_on_discard:
                self._discarded(cached_token(token.value, "", 0, False, 0.0, frozenset()))
            raise PermissionDenied(
                f"the service-account token presented for pod {config.pod.describe()} was issued "
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


def jwt_pod_uid(jwt: str) -> str | None:
    """The pod uid a Kubernetes service-account JWT is bound to, if it says; signature not checked.

    Only trusted after Vault accepted the JWT at login: that is Vault's (or the
    API server's TokenReview's) check of the signature.
    """
    kubernetes = jwt_claims(jwt).get("kubernetes.io")
    pod = kubernetes.get("pod") if isinstance(kubernetes, dict) else None
    uid = pod.get("uid") if isinstance(pod, dict) else None
    return uid if isinstance(uid, str) and uid else None


def jwt_claims(jwt: str) -> dict[str, Any]:
    """The claims of a JWT, unverified ({} when it is not a JWT); see jwt_pod_uid on trust."""
    parts = jwt.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}
