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

Static reads (KV and the like) are read on every poll, so a changed secret or policy
shows at once, unless the SecretProviderClass sets `refreshInterval`: then the last
good answer is served for that long (`static` entries).

`LeaseKey.scope` says whose an answer is: one pod's (the default), or, with
`credentialScope: serviceAccount`, one workload identity's, so that replicas share one
credential and one static read per refresh window. Either way a Mount only reaches
this cache after its pod logged in with its own JWT, and the key holds the identity
Vault logged it in as.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from provider.errors import DeadlineExceeded, ProviderError
from provider.mount.counters import MountCounters
from provider.mount.lease_cache import Held, LeaseCache, LeaseKey, token_owner
from provider.mount.lockstep import Conversation, run_alone, run_together
from provider.render import gojson
from provider.request.vault_request import VaultRequest
from provider.vault.replies import VaultReply
from provider.vault.session import VaultSession

__all__ = ["Fetched", "LeaseKeeper", "Source", "hold_policy"]

RENEW_SHARE = 2 / 3
REFETCH_SHARE = 0.85
CERT_SHARE = 2 / 3


class _KeyLock:
    """A lock per LeaseKey, alive only while some Mount holds it (weakly referenced)."""

    __slots__ = ("__weakref__", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()


#: Where a Mount's answer came from: fetched now, or kept and served again (a lease renewed first).
Source = Literal["new", "kept", "renewed", "absent"]  # absent: an optional object's secret is not there


@dataclass(frozen=True)
class Fetched:
    """An answer to one request of a Mount, and where it came from."""

    reply: VaultReply
    source: Source
    static: bool = False  # a plain read served again within its refresh interval


def _number(value: Any) -> float:
    try:
        return float(str(value)) if value is not None and not isinstance(value, bool) else 0.0
    except ValueError:
        return 0.0


def hold_policy(
    request: VaultRequest, reply: VaultReply, now: float, wall_now: float, refresh_seconds: float = 0.0
) -> Held | None:
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
    if refresh_seconds > 0 and request.method == "GET":
        # Only reads: a write (transit, a signing) is the pod's own request every time.
        end = now + refresh_seconds
        return Held(reply, "", False, refresh_seconds, end, end, static=True)
    return None


class LeaseKeeper:
    """Serves a request from the cache when its lease allows, else asks Vault and keeps the answer."""

    def __init__(
        self,
        cache: LeaseCache,
        counters: MountCounters,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._cache = cache
        self._counters = counters
        self._clock = clock
        self._wall_clock = wall_clock
        self._key_locks: weakref.WeakValueDictionary[LeaseKey, _KeyLock] = weakref.WeakValueDictionary()
        self._key_locks_guard = threading.Lock()

    def fetch(self, key: LeaseKey, session: VaultSession, refresh_seconds: float = 0.0) -> Fetched:
        """The answer for `key.request` and how it was had; static answers are kept `refresh_seconds`."""
        return run_alone(self._fetch(key, session, refresh_seconds), session)

    def fetch_all(
        self, keys: Sequence[LeaseKey], session: VaultSession, refresh_seconds: float = 0.0
    ) -> list[Fetched | ProviderError]:
        """`fetch` for each key (all of one Mount: distinct), their Vault requests sent together."""
        # Key locks are taken in one order by every Mount, so two Mounts never wait on each other.
        order = sorted(range(len(keys)), key=lambda index: _lock_order(keys[index].request))
        outcomes = run_together(
            [self._fetch(keys[index], session, refresh_seconds) for index in order], session
        )
        by_key = dict(zip(order, outcomes, strict=True))
        return [by_key[index] for index in range(len(keys))]

    def _fetch(self, key: LeaseKey, session: VaultSession, refresh_seconds: float) -> Conversation[Fetched]:
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
                source = yield from self._keep(key, held, refresh_seconds)
                if source is not None:
                    return Fetched(held.reply, source, held.static)
            reply = yield key.request
            now = self._clock()
            held = hold_policy(key.request, reply, now, self._wall_clock(), refresh_seconds)
            if held is not None:
                # Only what is kept needs its token's name; most reads are not kept.
                held = replace(held, owner=token_owner(session.token), checked_at=now)
            self._cache.put(key, held)
            return Fetched(reply, "new")
        finally:
            key_lock.lock.release()

    def _keep(self, key: LeaseKey, held: Held, refresh_seconds: float) -> Conversation[Source | None]:
        """ "kept"/"renewed" when `held` may be served again, None when it must be issued anew."""
        now = self._clock()
        if held.static:
            # This Mount's own interval counts: another class may have kept it for longer.
            return "kept" if held.fresh_for(refresh_seconds, now) else None
        if not held.lease_id:
            return "kept" if now < held.refresh_at else None
        if now >= held.refresh_at:
            if held.renewable and (yield from self._renew(key, held)):
                return "renewed"
            return None
        if refresh_seconds > 0 and now - held.checked_at < refresh_seconds:
            # refreshInterval bounds lease look-ups too: a revoked lease shows within the interval.
            return "kept"
        if not (yield from self._alive(held)):
            return None
        if refresh_seconds > 0:
            self._cache.put(key, replace(held, checked_at=now))
        return "kept"

    def _alive(self, held: Held) -> Conversation[bool]:
        """Whether Vault still knows the lease (an operator may have revoked it)."""
        try:
            yield _lease_request("/v1/sys/leases/lookup", {"lease_id": held.lease_id})
        except ProviderError as exc:
            if exc.status in (400, 404):
                return False
            if exc.status == 403:
                # The role's policy does not allow lookups (token_no_default_policy): we
                # cannot tell, so keep the lease until its renewal point.
                return True
            raise
        return True

    def _renew(self, key: LeaseKey, held: Held) -> Conversation[bool]:
        """Renew by the original duration; False when Vault refuses or will not extend it any more."""
        body = {"lease_id": held.lease_id, "increment": int(held.duration)}
        try:
            reply = yield _lease_request("/v1/sys/leases/renew", body)
        except ProviderError as exc:
            if exc.status in (400, 403, 404):
                self._counters.lease_renewal("refused")
                return False
            self._counters.lease_renewal("error")
            raise
        payload = reply.payload if isinstance(reply.payload, dict) else {}
        granted = _number(payload.get("lease_duration"))
        now = self._clock()
        if now + granted <= held.expires_at:
            # Capped by the max TTL: the lease ends when it ends; issue a successor now.
            self._counters.lease_renewal("capped")
            return False
        renewed = replace(
            held, expires_at=now + granted, refresh_at=now + granted * RENEW_SHARE, checked_at=now
        )
        self._cache.put(key, renewed)
        self._counters.lease_renewal("renewed")
        return True


def _lock_order(request: VaultRequest) -> tuple[str, str, tuple[tuple[str, str], ...], bool, str]:
    """A total order on one Mount's requests (its keys differ only in them)."""
    return (request.method, request.path, request.query, request.body is None, request.body or "")


def _lease_request(path: str, body: dict[str, Any]) -> VaultRequest:
    return VaultRequest("PUT", path, body=gojson.dumps(body))
