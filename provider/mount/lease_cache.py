"""Kept answers and their keys: the bounded store `leases` serves from and `-state-dir` saves.

A key names one request of one owner (a pod, or with `credentialScope: serviceAccount`
a workload identity) as Vault knows it; an entry says when to look at it again. The
policy of what to keep and for how long is in `leases`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from provider.request.vault_request import VaultRequest
from provider.vault.replies import VaultReply

__all__ = ["KINDS", "Held", "Kind", "LeaseCache", "LeaseEntry", "LeaseKey", "token_owner"]

#: What a kept answer is, as the metrics count them.
Kind = Literal["lease", "certificate", "static"]
KINDS: tuple[Kind, ...] = ("lease", "certificate", "static")


@dataclass(frozen=True)
class LeaseKey:
    """One request of one owner: a kept answer is only ever served to the identity that obtained it."""

    address: str
    namespace: str
    auth_mount: str
    role: str
    identity: str  # who Vault logged the pod in as
    scope: str  # "pod:<uid>", or "serviceAccount:<namespace>/<name>@<audience>" (CachePolicy.scope_of)
    request: VaultRequest
    # Hashed once: a warm poll looks each key up several times (cache, per-key lock), and the
    # same key objects serve every poll of a volume (`prepared`).
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fields = (self.address, self.namespace, self.auth_mount, self.role, self.identity, self.scope)
        object.__setattr__(self, "_hash", hash((*fields, self.request)))

    def __hash__(self) -> int:
        return self._hash


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
    static: bool = False  # a plain read kept for `refreshInterval`, not a lease or certificate
    # When Vault last confirmed the lease (issued, looked up, renewed); refreshInterval spaces lookups.
    checked_at: float = field(default=0.0, metadata={"clock": "monotonic"})

    @property
    def kind(self) -> Kind:
        if self.static:
            return "static"
        return "lease" if self.lease_id else "certificate"

    def fresh_for(self, refresh_seconds: float, now: float) -> bool:
        """Whether a static answer may still be served under a refresh interval (0: never)."""
        return refresh_seconds > 0 and now - (self.expires_at - self.duration) < refresh_seconds


@dataclass(frozen=True)
class LeaseEntry:
    """A kept answer with its key and when it was last used (monotonic): what the restart state keeps."""

    key: LeaseKey
    held: Held
    last_used: float = field(metadata={"clock": "monotonic"})


def token_owner(token: str) -> str:
    """A short name for the token an answer came with (a Vault token is random: a plain hash hides it)."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


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

    def census(self) -> dict[Kind, int]:
        """Kept answers not yet expired, by kind (for the metrics, at scrape time)."""
        counts = dict.fromkeys(KINDS, 0)
        with self._lock:
            now = self._clock()
            for held in self._entries.values():
                if held.expires_at > now:
                    counts[held.kind] += 1
        return counts

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
        if self._entries.pop(key, None) is not None:
            self._used.pop(key, None)
            self.changes += 1

    def put(self, key: LeaseKey, held: Held | None) -> None:
        """Keep `held` for `key`; None forgets the key."""
        if self._capacity <= 0:
            return
        with self._lock:
            if held is None and key not in self._entries:
                # A read that is not kept, every poll: nothing to forget, no sweep, no state to save.
                return
            self._drop(key)
            now = self._clock()
            if held is not None:
                self._entries[key] = held
                self._used[key] = now
                self.changes += 1
            for stale in [k for k, v in self._entries.items() if v.expires_at <= now]:
                self._drop(stale)
            while len(self._entries) > self._capacity:
                self._drop(next(iter(self._entries)))
