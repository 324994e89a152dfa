"""Dynamic secrets kept across rotation polls: database credentials, leased secrets, PKI certificates.

Upstream re-issues these on every poll, which piles up leases and flips credentials
under running applications. Here an answer that carries a lease is kept for that
pod and that exact request and served again, so files and versions stay the same
while the credential lives:

- a renewable lease is checked on each poll (one cheap lookup, so a revoked lease
  is replaced at once) and renewed in place at 2/3 of its duration, by its original
  duration, which never shortens it; when Vault will not extend it further (max TTL
  near) or refuses, the secret is issued anew;
- a lease that cannot be renewed is fetched again at 85% of its duration;
- a PKI certificate (no lease, an `expiration`) is kept until 2/3 of its validity.

Static reads (KV and the like) are never kept: they are cheap, and a changed secret
or policy must show on the next poll.
"""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from provider.errors import DeadlineExceeded, ProviderError
from provider.render import gojson
from provider.request.vault_request import VaultRequest
from provider.vault.replies import VaultReply
from provider.vault.session import VaultSession

__all__ = [
    "Fetched",
    "Held",
    "LeaseCache",
    "LeaseEntry",
    "LeaseKeeper",
    "LeaseKey",
    "Source",
    "hold_policy",
    "token_owner",
]

RENEW_SHARE = 2 / 3
REFETCH_SHARE = 0.85
CERT_SHARE = 2 / 3


class _KeyLock:
    """A lock per LeaseKey, alive only while some Mount holds it (weakly referenced)."""

    __slots__ = ("__weakref__", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()


@dataclass(frozen=True)
class LeaseKey:
    """One pod's one request: a kept answer is only ever served to the identity that obtained it."""

    address: str
    namespace: str
    auth_mount: str
    role: str
    identity: str  # who Vault logged the pod in as
    pod_uid: str
    request: VaultRequest


#: Where a Mount's answer came from: fetched now, or a kept dynamic secret served again (renewed first).
Source = Literal["new", "kept", "renewed"]


@dataclass(frozen=True)
class Fetched:
    """An answer to one request of a Mount, and where it came from."""

    reply: VaultReply
    source: Source


@dataclass(frozen=True)
class Held:
    """A kept answer and when to look at it again (monotonic seconds)."""

    reply: VaultReply
    lease_id: str
    renewable: bool
    duration: float
    expires_at: float = field(metadata={"clock": "monotonic"})
    refresh_at: float = field(metadata={"clock": "monotonic"})
    owner: str = ""  # token_owner() of the token that obtained it: it dies with that token


@dataclass(frozen=True)
class LeaseEntry:
    """A kept answer with its key and when it was last used (monotonic): what the restart state keeps."""

    key: LeaseKey
    held: Held
    last_used: float = field(metadata={"clock": "monotonic"})


def token_owner(token: str) -> str:
    """A short name for the token an answer came with (a Vault token is random: a plain hash hides it)."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def _number(value: Any) -> float:
    try:
        return float(str(value)) if value is not None and not isinstance(value, bool) else 0.0
    except ValueError:
        return 0.0


def hold_policy(request: VaultRequest, reply: VaultReply, now: float, wall_now: float) -> Held | None:
    """How long to keep an answer, or None for answers that are read afresh on every poll."""
    payload = reply.payload if isinstance(reply.payload, dict) else {}
    lease_id = payload.get("lease_id")
    duration = _number(payload.get("lease_duration"))
    if isinstance(lease_id, str) and lease_id and duration > 0:
        renewable = payload.get("renewable") is True
        share = RENEW_SHARE if renewable else REFETCH_SHARE
        return Held(reply, lease_id, renewable, duration, now + duration, now + duration * share)
    data = payload.get("data")
    if request.method != "GET" and isinstance(data, dict) and "certificate" in data:
        validity = _number(data.get("expiration")) - wall_now
        if validity > 0:
            return Held(reply, "", False, validity, now + validity, now + validity * CERT_SHARE)
    return None


class LeaseCache:
    """Kept answers, least recently used first out, expired ones dropped as found; saved by `-state-dir`."""

    def __init__(self, capacity: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._capacity = capacity
        self._clock = clock
        self._entries: OrderedDict[LeaseKey, Held] = OrderedDict()
        self._used: dict[LeaseKey, float] = {}
        self._lock = threading.Lock()
        # Bumped on every change (`changes`) and every hit (`touches`), for the state writer.
        self.changes = self.touches = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: LeaseKey) -> Held | None:
        with self._lock:
            held = self._entries.get(key)
            if held is None:
                return None
            now = self._clock()
            if held.expires_at <= now:
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            self._used[key] = now
            self.touches += 1
            return held

    def forget_owner(self, owner: str) -> None:
        """Forget every answer obtained with the token `owner` names (Vault no longer knows it)."""
        with self._lock:
            for key in [k for k, held in self._entries.items() if held.owner == owner]:
                self._drop(key)

    def snapshot(self) -> list[LeaseEntry]:
        """Every live entry, least recently used first."""
        with self._lock:
            now = self._clock()
            return [
                LeaseEntry(key, held, self._used.get(key, now))
                for key, held in self._entries.items()
                if held.expires_at > now
            ]

    def restore(self, entries: list[LeaseEntry]) -> int:
        """Add restored entries (least recently used first); returns how many are kept."""
        if self._capacity <= 0:
            return 0
        with self._lock:
            for entry in entries[-self._capacity :]:
                if entry.key not in self._entries:
                    self._entries[entry.key] = entry.held
                    self._used[entry.key] = entry.last_used
            return len(self._entries)

    def _drop(self, key: LeaseKey) -> None:  # lock held
        self._entries.pop(key, None)
        self._used.pop(key, None)
        self.changes += 1

    def put(self, key: LeaseKey, held: Held | None) -> None:
        """Keep `held` for `key`; None forgets the key."""
        if self._capacity <= 0:
            return
        with self._lock:
            self._drop(key)
            now = self._clock()
            if held is not None:
                self._entries[key] = held
                self._used[key] = now
            for stale in [k for k, v in self._entries.items() if v.expires_at <= now]:
                self._drop(stale)
            while len(self._entries) > self._capacity:
                self._drop(next(iter(self._entries)))


class LeaseKeeper:
    """Serves a request from the cache when its lease allows, else asks Vault and keeps the answer."""

    def __init__(
        self,
        cache: LeaseCache,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._cache = cache
        self._clock = clock
        self._wall_clock = wall_clock
        self._key_locks: weakref.WeakValueDictionary[LeaseKey, _KeyLock] = weakref.WeakValueDictionary()
        self._key_locks_guard = threading.Lock()

    def fetch(self, key: LeaseKey, session: VaultSession) -> Fetched:
        """The answer for `key.request` and how it was had."""
        # One Mount at a time per pod and request, so two volumes never issue twice.
        with self._key_locks_guard:
            key_lock = self._key_locks.get(key)
            if key_lock is None:
                key_lock = self._key_locks[key] = _KeyLock()
        # Per key, not striped: a Vault that hangs for one pod must not hold up another.
        if not key_lock.lock.acquire(timeout=session.deadline.remaining()):
            raise DeadlineExceeded(
                "another Mount of this pod was still fetching the same secret at the deadline"
            )
        try:
            held = self._cache.get(key)
            if held is not None:
                source = self._keep(key, held, session)
                if source is not None:
                    return Fetched(held.reply, source)
            reply = session.send(key.request)
            held = hold_policy(key.request, reply, self._clock(), self._wall_clock())
            self._cache.put(key, held and replace(held, owner=token_owner(session.token)))
            return Fetched(reply, "new")
        finally:
            key_lock.lock.release()

    def _keep(self, key: LeaseKey, held: Held, session: VaultSession) -> Source | None:
        """ "kept"/"renewed" when `held` may be served again, None when it must be issued anew."""
        now = self._clock()
        if not held.lease_id:
            return "kept" if now < held.refresh_at else None
        if now >= held.refresh_at:
            if held.renewable and self._renew(key, held, session):
                return "renewed"
            return None
        return "kept" if self._alive(held, session) else None

    def _alive(self, held: Held, session: VaultSession) -> bool:
        """Whether Vault still knows the lease (an operator may have revoked it)."""
        try:
            session.send(_lease_request("/v1/sys/leases/lookup", {"lease_id": held.lease_id}))
        except ProviderError as exc:
            if exc.status in (400, 404):
                return False
            if exc.status == 403:
                # The role's policy does not allow lookups (token_no_default_policy): we
                # cannot tell, so keep the lease until its renewal point.
                return True
            raise
        return True

    def _renew(self, key: LeaseKey, held: Held, session: VaultSession) -> bool:
        """Renew by the original duration; False when Vault refuses or will not extend it any more."""
        body = {"lease_id": held.lease_id, "increment": int(held.duration)}
        try:
            reply = session.send(_lease_request("/v1/sys/leases/renew", body))
        except ProviderError as exc:
            if exc.status in (400, 403, 404):
                return False
            raise
        payload = reply.payload if isinstance(reply.payload, dict) else {}
        granted = _number(payload.get("lease_duration"))
        now = self._clock()
        if now + granted <= held.expires_at:
            # Capped by the max TTL: the lease ends when it ends; issue a successor now.
            return False
        self._cache.put(key, replace(held, expires_at=now + granted, refresh_at=now + granted * RENEW_SHARE))
        return True


def _lease_request(path: str, body: dict[str, Any]) -> VaultRequest:
    return VaultRequest("PUT", path, body=gojson.dumps(body))
