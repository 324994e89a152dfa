"""Vault tokens per pod identity, reused across rotation polls.

Every Mount is a poll, so logging in on each one (upstream, before its cache) grew
Vault's token store without bound. A token is reused until two thirds of its lease
have passed, then renewed in place when Vault allows it (the dynamic secrets it
obtained are its children and would die with it), else replaced by a fresh login
ahead of expiry. Concurrent Mounts of one pod wait for a single login or renewal.
The key holds a keyed digest of the exact JWT the pod presented, so a request that
claims another pod's identity without its token can never ride that pod's Vault
token. Bounded by `-cache-size` (least recently used first out); expired entries
go as they are found.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

__all__ = ["CachedToken", "TokenCache", "TokenKey", "cached_token", "jwt_digest"]

# A token is replaced after this share of its lease (Vault Agent renews at 2/3 too).
REFRESH_SHARE = 2 / 3

_DIGEST_KEY = secrets.token_bytes(32)


def jwt_digest(jwt: str) -> str:
    """A process-keyed digest of the presented JWT: equal tokens match, nothing is learnt from it."""
    return hmac.new(_DIGEST_KEY, jwt.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class TokenKey:
    """Everything that makes a Vault token usable for one Mount and not for another."""

    address: str
    namespace: str
    auth_mount: str
    role: str
    pod_namespace: str
    pod_name: str
    pod_uid: str
    service_account: str
    jwt_digest: str


@dataclass(frozen=True)
class CachedToken:
    value: str = field(repr=False)
    # The identity Vault knows this login by (entity or alias metadata): leases are keyed on it.
    identity: str
    lease_seconds: int
    renewable: bool
    expires_at: float  # monotonic; math.inf for a token without expiry
    refresh_at: float  # monotonic time after which it is renewed or replaced


class TokenCache:
    """LRU cache of Vault tokens with single-flight logins; capacity <= 0 disables it."""

    def __init__(
        self,
        capacity: int,
        clock: Callable[[], float] = time.monotonic,
        on_discard: Callable[[CachedToken], None] | None = None,
    ) -> None:
        self._capacity = capacity
        self._clock = clock
        self._on_discard = on_discard
        self._entries: OrderedDict[TokenKey, CachedToken] = OrderedDict()
        self._logins: dict[TokenKey, Future[CachedToken]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(
        self,
        key: TokenKey,
        login: Callable[[], CachedToken],
        renew: Callable[[CachedToken], CachedToken | None],
    ) -> tuple[CachedToken, bool]:
        """(token, whether it was served from the cache without a login).

        A token past its refresh point is first renewed (`renew` returns the extended
        token, or None when Vault will not extend it), else replaced by `login`. Either
        runs at most once per key at a time.
        """
        if self._capacity <= 0:
            return login(), False
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and self._clock() < entry.refresh_at:
                self._entries.move_to_end(key)
                return entry, True
            pending = self._logins.get(key)
            owner = pending is None
            if pending is None:
                pending = Future()
                self._logins[key] = pending
        if not owner:
            # Another Mount of the same pod is logging in; its result serves us too.
            return pending.result(), False
        renewed = None
        try:
            if entry is not None and entry.renewable and self._clock() < entry.expires_at:
                renewed = renew(entry)
            token = renewed or login()
        except BaseException as exc:
            with self._lock:
                del self._logins[key]
            pending.set_exception(exc)
            raise
        with self._lock:
            del self._logins[key]
            replaced = self._entries.pop(key, None)
            self._entries[key] = token
            discarded = [replaced] if replaced is not None and replaced.value != token.value else []
            discarded += self._evict()
        pending.set_result(token)
        self._discard(discarded)
        return token, renewed is not None

    def invalidate(self, key: TokenKey, token: CachedToken) -> None:
        """Forget `token` (Vault refused it), unless a newer one has already replaced it."""
        with self._lock:
            if self._entries.get(key) is token:
                del self._entries[key]

    def _evict(self) -> list[CachedToken]:
        """Drop expired entries, then the least recently used beyond capacity; lock held."""
        now = self._clock()
        gone = [key for key, entry in self._entries.items() if entry.expires_at <= now]
        discarded = [self._entries.pop(key) for key in gone]
        while len(self._entries) > self._capacity:
            discarded.append(self._entries.popitem(last=False)[1])
        return discarded

    def _discard(self, tokens: list[CachedToken]) -> None:
        if self._on_discard is not None:
            for token in tokens:
                self._on_discard(token)


def cached_token(value: str, identity: str, lease_seconds: int, renewable: bool, now: float) -> CachedToken:
    """A token obtained (or renewed) at `now` with this lease; one without expiry is kept for good."""
    if lease_seconds <= 0:
        return CachedToken(value, identity, 0, False, math.inf, math.inf)
    return CachedToken(
        value, identity, lease_seconds, renewable, now + lease_seconds, now + lease_seconds * REFRESH_SHARE
    )
