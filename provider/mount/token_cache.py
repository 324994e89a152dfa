"""Vault tokens per pod identity, reused across rotation polls.

Every Mount is a poll, so logging in on each one (upstream, before its cache) grew
Vault's token store without bound. A token is reused until two thirds of its lease
have passed, then renewed in place when Vault allows it (the dynamic secrets it
obtained are its children and would die with it), else replaced by a fresh login
ahead of expiry. Concurrent Mounts of one pod wait for a single login or renewal.

A cached token is only served to a request that presents a JWT already proven for
it (kept as keyed digests). A new JWT (the kubelet rotates them) is proven by a
login with it: when Vault answers with the same identity, the JWT joins the proven
set and the old token, with its leases, stays in use; otherwise the new token
replaces it. A request that claims a pod's identity without one of its JWTs never
rides its token. Bounded by `-cache-size` (least recently used first out).

Entries restored from the restart state (`-state-dir`) are unverified: Vault may
have revoked them while the provider was down, so their first use asks Vault
(`verify`, a lookup-self) before any request rides them.
"""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace

__all__ = ["CachedToken", "JwtDigester", "TokenCache", "TokenEntry", "TokenKey", "cached_token"]

# A token is replaced after this share of its lease (Vault Agent renews at 2/3 too).
REFRESH_SHARE = 2 / 3
# JWTs remembered per token: the kubelet rotates a pod's token about hourly.
MAX_PROVEN_JWTS = 4


class JwtDigester:
    """Keyed digests of presented JWTs: equal tokens match, nothing is learnt from one.

    The key is derived from the HMAC key (not drawn per process), so a JWT proven
    before a restart still proves the token restored after it.
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "JwtDigester(<key hidden>)"

    def __call__(self, jwt: str) -> str:
        return hmac.digest(self._key, jwt.encode(), "sha256").hex()


@dataclass(frozen=True)
class TokenKey:
    """The pod and the Vault login it needs: one cached token each."""

    address: str
    namespace: str
    auth_mount: str
    role: str
    pod_namespace: str
    pod_name: str
    pod_uid: str
    service_account: str
    # Hashed once: each poll looks its key up several times, and a volume's polls share it (`pod_tokens`).
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fields = (self.address, self.namespace, self.auth_mount, self.role, self.pod_namespace)
        object.__setattr__(self, "_hash", hash((*fields, self.pod_name, self.pod_uid, self.service_account)))

    def __hash__(self) -> int:
        return self._hash


@dataclass(frozen=True)
class TokenEntry:
    """A cached token with its key and when it was last used (monotonic): what the restart state keeps."""

    key: TokenKey
    token: CachedToken
    last_used: float = field(metadata={"clock": "monotonic"})


@dataclass(frozen=True)
class CachedToken:
    value: str = field(repr=False)
    # The identity Vault knows this login by (entity or alias metadata).
    identity: str
    lease_seconds: int
    renewable: bool
    # Monotonic (the metadata tells the restart state to store them as wall-clock times).
    expires_at: float = field(metadata={"clock": "monotonic"})  # math.inf: no expiry
    refresh_at: float = field(metadata={"clock": "monotonic"})  # then renewed or replaced
    proven_jwts: frozenset[str] = frozenset()  # digests of JWTs that logged in as `identity`
    verified: bool = True  # False for a token restored from disk and not yet looked up

    def proves(self, digest: str) -> bool:
        return digest in self.proven_jwts


class TokenCache:
    """LRU cache of Vault tokens with single-flight logins; capacity <= 0 disables it."""

    def __init__(
        self,
        capacity: int,
        clock: Callable[[], float] = time.monotonic,
        on_discard: Callable[[CachedToken], None] | None = None,
        on_refused: Callable[[CachedToken], None] | None = None,
    ) -> None:
        self._capacity = capacity
        self._clock = clock
        self._on_discard = on_discard
        # Told about a restored token Vault no longer knows (its leases died with it).
        self._on_refused = on_refused
        self._entries: OrderedDict[TokenKey, CachedToken] = OrderedDict()
        self._used: dict[TokenKey, float] = {}
        # Bumped on every change (`changes`) and every hit (`touches`), for the state writer.
        self.changes = self.touches = 0
        # Logins under way: the future of each, and the JWT digest it logs in with.
        self._logins: dict[TokenKey, tuple[Future[CachedToken], str]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(
        self,
        key: TokenKey,
        digest: str,
        login: Callable[[], CachedToken],
        renew: Callable[[CachedToken], CachedToken | None],
        verify: Callable[[CachedToken], bool] = lambda _: True,
    ) -> tuple[CachedToken, bool]:
        """(token, whether it was served without a login) for a request presenting JWT `digest`.

        `login` logs in with that JWT and returns a token whose `proven_jwts` holds it;
        `renew` extends a token (None when Vault will not); `verify` says whether Vault
        still knows a restored token. Logins, renewals and checks run at most once per
        key at a time.
        """
        if self._capacity <= 0:
            return login(), False
        while True:
            with self._lock:
                entry = self._entries.get(key)
                now = self._clock()
                if entry is not None and entry.verified and entry.proves(digest) and now < entry.refresh_at:
                    self._entries.move_to_end(key)
                    self._used[key] = now
                    self.touches += 1
                    return entry, True
                under_way = self._logins.get(key)
                if under_way is None:
                    pending: Future[CachedToken] = Future()
                    self._logins[key] = (pending, digest)
                    break
            # Another Mount of this pod is logging in; look again once it is done.
            waited, owner_digest = under_way
            try:
                waited.result()
            except Exception:
                if owner_digest == digest:
                    raise  # the same JWT would fail the same way: no second login
                continue
        return self._refresh(key, digest, entry, pending, login, renew, verify)

    def _refresh(
        self,
        key: TokenKey,
        digest: str,
        entry: CachedToken | None,
        pending: Future[CachedToken],
        login: Callable[[], CachedToken],
        renew: Callable[[CachedToken], CachedToken | None],
        verify: Callable[[CachedToken], bool],
    ) -> tuple[CachedToken, bool]:
        served_from_cache = False
        discarded: list[CachedToken] = []
        refused: CachedToken | None = None
        try:
            if entry is not None and not entry.verified:
                if self._clock() < entry.expires_at and verify(entry):
                    entry = replace(entry, verified=True)
                else:
                    refused, entry = entry, None
            usable = entry is not None and self._clock() < entry.expires_at
            if entry is not None and entry.proves(digest) and self._clock() < entry.refresh_at:
                token, served_from_cache = entry, True  # a restored token Vault still knows
            elif entry is not None and usable and entry.proves(digest):
                renewed = renew(entry) if entry.renewable else None
                token = renewed or login()
                served_from_cache = renewed is not None
            else:
                token = login()
                if entry is not None and usable and token.identity == entry.identity:
                    # A new JWT for the same identity: keep the older token and its leases.
                    proven = sorted(entry.proven_jwts | token.proven_jwts)[-MAX_PROVEN_JWTS:]
                    discarded.append(token)
                    token = replace(entry, proven_jwts=frozenset([*proven, digest]))
        except BaseException as exc:
            with self._lock:
                del self._logins[key]
            pending.set_exception(exc)
            raise
        with self._lock:
            del self._logins[key]
            replaced = self._entries.pop(key, None)
            self._entries[key] = token
            self._used[key] = self._clock()
            self.changes += 1
            if replaced is not None and replaced.value != token.value:
                discarded.append(replaced)
            discarded += self._evict()
        pending.set_result(token)
        if refused is not None and self._on_refused is not None:
            self._on_refused(refused)
        self._discard(discarded)
        return token, served_from_cache

    def invalidate(self, key: TokenKey, token: CachedToken) -> None:
        """Forget `token` (Vault refused it), unless a newer one has already replaced it."""
        with self._lock:
            if self._entries.get(key) is token:
                del self._entries[key]
                self._used.pop(key, None)
                self.changes += 1
        self._discard([token])

    def snapshot(self) -> list[TokenEntry]:
        """Every live entry, least recently used first."""
        with self._lock:
            now = self._clock()
            return [
                TokenEntry(key, token, self._used.get(key, now))
                for key, token in self._entries.items()
                if token.expires_at > now
            ]

    def restore(self, entries: list[TokenEntry]) -> int:
        """Add restored entries (least recently used first) as unverified; returns how many were kept."""
        with self._lock:
            for entry in entries[-self._capacity :] if self._capacity > 0 else []:
                if entry.key not in self._entries:
                    self._entries[entry.key] = replace(entry.token, verified=False)
                    self._used[entry.key] = entry.last_used
            self._evict()
            return len(self._entries)

    def _evict(self) -> list[CachedToken]:
        """Drop expired entries, then the least recently used beyond capacity; lock held."""
        now = self._clock()
        gone = [key for key, entry in self._entries.items() if entry.expires_at <= now]
        discarded = [self._entries.pop(key) for key in gone]
        while len(self._entries) > self._capacity:
            oldest, token = self._entries.popitem(last=False)
            gone.append(oldest)
            discarded.append(token)
        for key in gone:
            self._used.pop(key, None)
        return discarded

    def _discard(self, tokens: list[CachedToken]) -> None:
        if self._on_discard is not None:
            for token in tokens:
                self._on_discard(token)


def cached_token(
    value: str, identity: str, lease_seconds: int, renewable: bool, now: float, proven_jwts: frozenset[str]
) -> CachedToken:
    """A token obtained (or renewed) at `now` with this lease; one without expiry is kept for good."""
    if lease_seconds <= 0:
        return CachedToken(value, identity, 0, False, math.inf, math.inf, proven_jwts)
    return CachedToken(
        value,
        identity,
        lease_seconds,
        renewable,
        now + lease_seconds,
        now + lease_seconds * REFRESH_SHARE,
        proven_jwts,
    )
