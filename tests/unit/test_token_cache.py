"""provider.token_cache: one Vault token per pod identity, reused, renewed or replaced, single-flight.

The cache is driven with an injected clock and plain callables for `login` and `renew`,
so every timing rule is exact: reuse before the refresh point (2/3 of the lease), renew
after it, a fresh login when renewal is refused or the token has expired.
"""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from provider.errors import PermissionDenied, VaultUnavailable
from provider.mount.token_cache import (
    REFRESH_SHARE,
    CachedToken,
    JwtDigester,
    TokenCache,
    TokenEntry,
    TokenKey,
    cached_token,
)

LEASE = 30  # seconds; refresh point at 20


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


jwt_digest = JwtDigester(b"k" * 32)

# The digest of the JWT every request in these tests presents, unless a test says otherwise.
DIGEST = jwt_digest("jwt-of-app-0")


def key(pod: str = "app-0") -> TokenKey:
    return TokenKey(
        address="http://127.0.0.1:8200",
        namespace="",
        auth_mount="kubernetes",
        role="app",
        pod_namespace="team-a",
        pod_name=pod,
        pod_uid=f"uid-{pod}",
        service_account="app",
    )


class Vault:
    """Stands in for the login and renew-self answers; counts the calls."""

    def __init__(self, clock: Clock, lease: int = LEASE, renewable: bool = True) -> None:
        self.clock = clock
        self.lease = lease
        self.renewable = renewable
        self.logins = 0
        self.renewals: list[CachedToken] = []
        # What renew-self grants: a lease in seconds, or None for a refusal.
        self.renew_grant: int | None = LEASE

    def login(self) -> CachedToken:
        self.logins += 1
        return cached_token(
            f"hvs.token-{self.logins}",
            "entity-1",
            self.lease,
            self.renewable,
            self.clock(),
            frozenset({DIGEST}),
        )

    def renew(self, token: CachedToken) -> CachedToken | None:
        self.renewals.append(token)
        if self.renew_grant is None:
            return None
        return cached_token(
            token.value, token.identity, self.renew_grant, True, self.clock(), token.proven_jwts
        )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def vault(clock: Clock) -> Vault:
    return Vault(clock)


@pytest.fixture
def discarded() -> list[CachedToken]:
    return []


@pytest.fixture
def cache(clock: Clock, discarded: list[CachedToken]) -> TokenCache:
    return TokenCache(10, clock, discarded.append)


def get(cache: TokenCache, vault: Vault, token_key: TokenKey | None = None) -> tuple[CachedToken, bool]:
    return cache.get(token_key or key(), DIGEST, vault.login, vault.renew)


# --- cached_token and jwt_digest ----------------------------------------------------------


def test_cached_token_refreshes_at_two_thirds_of_its_lease() -> None:
    """A token obtained at `now` with a 30 s lease expires at now+30 and is refreshed from now+20."""
    token = cached_token("hvs.x", "entity-1", 30, True, 100.0, frozenset({DIGEST}))
    assert (token.lease_seconds, token.renewable) == (30, True)
    assert token.expires_at == 130.0
    assert token.refresh_at == pytest.approx(120.0)
    assert REFRESH_SHARE == 2 / 3


@pytest.mark.parametrize("lease", [pytest.param(0, id="zero"), pytest.param(-5, id="negative")])
def test_cached_token_without_a_lease_is_kept_for_good(lease: int) -> None:
    """A token without expiry (root-like, lease 0) is never refreshed and never renewed."""
    token = cached_token("hvs.x", "entity-1", lease, True, 100.0, frozenset({DIGEST}))
    assert (token.lease_seconds, token.renewable) == (0, False)
    assert token.expires_at == math.inf
    assert token.refresh_at == math.inf


def test_cached_token_never_shows_its_value() -> None:
    """The token value is not part of the repr (it would end up in failure reports and logs)."""
    token = cached_token("hvs.secret-value", "entity-1", 30, True, 0.0, frozenset({DIGEST}))
    assert "hvs.secret-value" not in repr(token)


def test_jwt_digest_matches_equal_tokens_only_and_hides_them() -> None:
    """Equal JWTs give equal digests, different ones differ, and the JWT is not in the digest."""
    assert jwt_digest("header.claims.sig") == jwt_digest("header.claims.sig")
    assert jwt_digest("header.claims.sig") != jwt_digest("header.claims.sih")
    assert "claims" not in jwt_digest("header.claims.sig")
    assert len(jwt_digest("x")) == 64


# --- Reuse, renewal and re-login ----------------------------------------------------------


def test_first_get_logs_in_and_is_not_from_the_cache(cache: TokenCache, vault: Vault) -> None:
    """An empty cache logs in once; the token is reported as not served from the cache."""
    token, from_cache = get(cache, vault)
    assert (token.value, from_cache) == ("hvs.token-1", False)
    assert vault.logins == 1
    assert len(cache) == 1


def test_token_is_reused_until_its_refresh_point(cache: TokenCache, vault: Vault, clock: Clock) -> None:
    """Before 2/3 of the lease every get serves the same token without login or renewal."""
    first, _ = get(cache, vault)
    for _ in range(5):
        clock.advance(3.9)  # up to 19.5 s of a 30 s lease
        token, from_cache = get(cache, vault)
        assert token is first
        assert from_cache is True
    assert vault.logins == 1
    assert vault.renewals == []


def test_token_past_its_refresh_point_is_renewed_in_place(
    cache: TokenCache, vault: Vault, clock: Clock, discarded: list[CachedToken]
) -> None:
    """At 2/3 of the lease the token is renewed: same value, new expiry, marked as from the cache."""
    first, _ = get(cache, vault)
    clock.advance(LEASE * 2 / 3)
    token, from_cache = get(cache, vault)

    assert token.value == first.value
    assert from_cache is True
    assert vault.renewals == [first]
    assert vault.logins == 1
    assert token.expires_at == clock() + LEASE
    assert token.refresh_at == pytest.approx(clock() + LEASE * 2 / 3)
    # The renewed token is cached: the next get is a plain hit.
    again, again_from_cache = get(cache, vault)
    assert (again, again_from_cache) == (token, True)
    assert len(vault.renewals) == 1
    # Same token value: nothing was let go of.
    assert discarded == []


def test_token_that_cannot_be_renewed_is_replaced_by_a_login(
    cache: TokenCache, vault: Vault, clock: Clock, discarded: list[CachedToken]
) -> None:
    """When renewal gives nothing, one fresh login replaces the token and the old one is discarded.

    `renew` returns None both when Vault refuses and when the renewal is capped by the token's
    max TTL (pod_auth decides that; the integration suite pins it against OpenBao).
    """
    first, _ = get(cache, vault)
    clock.advance(25)
    vault.renew_grant = None
    token, from_cache = get(cache, vault)

    assert token.value == "hvs.token-2"
    assert from_cache is False
    assert vault.renewals == [first]
    assert vault.logins == 2
    assert discarded == [first]


def test_non_renewable_token_is_replaced_without_trying_to_renew(
    clock: Clock, discarded: list[CachedToken]
) -> None:
    """A token Vault marked non-renewable is never sent to renew-self: a new login replaces it."""
    vault = Vault(clock, renewable=False)
    cache = TokenCache(10, clock, discarded.append)
    first, _ = get(cache, vault)
    clock.advance(21)
    token, from_cache = get(cache, vault)
    assert (token.value, from_cache) == ("hvs.token-2", False)
    assert vault.renewals == []
    assert discarded == [first]


def test_expired_token_is_not_renewed_but_replaced(
    cache: TokenCache, vault: Vault, clock: Clock, discarded: list[CachedToken]
) -> None:
    """A token whose lease has ended (the pod was away) cannot be renewed: straight to a login."""
    first, _ = get(cache, vault)
    clock.advance(LEASE)
    token, from_cache = get(cache, vault)
    assert (token.value, from_cache) == ("hvs.token-2", False)
    assert vault.renewals == []
    assert discarded == [first]


def test_failed_login_is_raised_and_not_cached(cache: TokenCache, vault: Vault) -> None:
    """A login error reaches the caller unchanged; the next get tries again."""

    def denied() -> CachedToken:
        raise PermissionDenied('login with role "app" was denied (HTTP 403): permission denied')

    with pytest.raises(PermissionDenied, match=r'^login with role "app" was denied \(HTTP 403\)'):
        cache.get(key(), DIGEST, denied, vault.renew)
    assert len(cache) == 0

    token, from_cache = get(cache, vault)
    assert (token.value, from_cache) == ("hvs.token-1", False)


def test_failed_renewal_is_raised_and_the_token_kept(cache: TokenCache, vault: Vault, clock: Clock) -> None:
    """Vault unreachable during renewal: the error is raised, no login is tried, the entry stays."""
    first, _ = get(cache, vault)
    clock.advance(21)

    def unreachable(_: CachedToken) -> CachedToken | None:
        raise VaultUnavailable("cannot reach Vault at http://127.0.0.1:8200: connection refused")

    with pytest.raises(VaultUnavailable, match=r"^cannot reach Vault at http://127\.0\.0\.1:8200"):
        cache.get(key(), DIGEST, vault.login, unreachable)
    assert vault.logins == 1
    # Once Vault answers again the same token is renewed.
    token, from_cache = get(cache, vault)
    assert (token.value, from_cache) == (first.value, True)


def test_keys_differ_by_every_identity_field(cache: TokenCache, vault: Vault) -> None:
    """Another pod name, uid, service account, role, mount, namespace or address: another login."""
    base = key()
    variants = [
        replace(base, address="https://vault:8200"),
        replace(base, namespace="tenant"),
        replace(base, auth_mount="jwt"),
        replace(base, role="other"),
        replace(base, pod_namespace="team-b"),
        replace(base, pod_name="app-1"),
        replace(base, pod_uid="uid-other"),
        replace(base, service_account="other"),
    ]
    tokens = {get(cache, vault, k)[0].value for k in [base, *variants]}
    assert len(tokens) == 1 + len(variants)
    assert vault.logins == 1 + len(variants)


# --- Single flight ------------------------------------------------------------------------


def test_concurrent_gets_for_one_key_log_in_once(clock: Clock) -> None:
    """N concurrent Mounts of one pod wait for one login and all get its token."""
    callers = 16
    arrived = threading.Semaphore(0)
    logins = 0
    lock = threading.Lock()

    def slow_login() -> CachedToken:
        nonlocal logins
        with lock:
            logins += 1
        # Hold the login until every caller has at least reached `get`.
        for _ in range(callers):
            assert arrived.acquire(timeout=5)
        time.sleep(0.05)
        return cached_token("hvs.only", "entity-1", LEASE, True, clock(), frozenset({DIGEST}))

    cache = TokenCache(10, clock)

    def call(_: int) -> CachedToken:
        arrived.release()
        return cache.get(key(), DIGEST, slow_login, lambda _: None)[0]

    with ThreadPoolExecutor(callers) as pool:
        tokens = list(pool.map(call, range(callers)))

    assert logins == 1
    assert {token.value for token in tokens} == {"hvs.only"}
    assert len(cache) == 1


def test_concurrent_gets_share_the_login_error(clock: Clock) -> None:
    """When the single login fails, every waiting caller gets that error; the next get retries."""
    callers = 8
    arrived = threading.Semaphore(0)
    logins = 0

    def failing_login() -> CachedToken:
        nonlocal logins
        logins += 1
        for _ in range(callers):
            assert arrived.acquire(timeout=5)
        time.sleep(0.05)  # let the last callers reach the pending login
        raise PermissionDenied("service account name not authorized")

    cache = TokenCache(10, clock)

    def call(_: int) -> BaseException | None:
        arrived.release()
        try:
            cache.get(key(), DIGEST, failing_login, lambda _: None)
        except PermissionDenied as exc:
            return exc
        return None

    with ThreadPoolExecutor(callers) as pool:
        errors = list(pool.map(call, range(callers)))

    assert all(isinstance(e, PermissionDenied) for e in errors)
    assert {str(e) for e in errors} == {"service account name not authorized"}
    assert logins == 1
    assert len(cache) == 0
    token, _ = cache.get(
        key(),
        DIGEST,
        lambda: cached_token("hvs.later", "e", LEASE, True, clock(), frozenset({DIGEST})),
        lambda _: None,
    )
    assert token.value == "hvs.later"


def test_concurrent_gets_of_different_pods_do_not_wait_for_each_other(clock: Clock) -> None:
    """Single flight is per key: a slow login of one pod does not hold up another pod's login."""
    release = threading.Event()
    cache = TokenCache(10, clock)

    def slow_login() -> CachedToken:
        assert release.wait(5)
        return cached_token("hvs.slow", "e", LEASE, True, clock(), frozenset({DIGEST}))

    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(cache.get, key("app-0"), DIGEST, slow_login, lambda _: None)
        fast = pool.submit(
            cache.get,
            key("app-1"),
            DIGEST,
            lambda: cached_token("hvs.fast", "e", LEASE, True, clock(), frozenset({DIGEST})),
            lambda _: None,
        )
        assert fast.result(timeout=5)[0].value == "hvs.fast"
        assert not slow.done()
        release.set()
        assert slow.result(timeout=5)[0].value == "hvs.slow"


# --- Bounds: capacity, expiry, invalidation -----------------------------------------------


def test_least_recently_used_token_is_evicted_at_capacity(clock: Clock, vault: Vault) -> None:
    """At capacity the least recently used token goes (a hit counts as a use) and is discarded."""
    discarded: list[CachedToken] = []
    cache = TokenCache(2, clock, discarded.append)
    a, _ = get(cache, vault, key("a"))
    b, _ = get(cache, vault, key("b"))
    assert get(cache, vault, key("a")) == (a, True)  # a is now the most recent
    get(cache, vault, key("c"))

    assert len(cache) == 2
    assert discarded == [b]
    assert get(cache, vault, key("a")) == (a, True)
    token, from_cache = get(cache, vault, key("b"))
    assert from_cache is False
    assert token.value != b.value
    assert vault.logins == 4


def test_expired_tokens_are_evicted_when_another_is_stored(clock: Clock) -> None:
    """Tokens of vanished pods go once their lease has ended, at the next store, and are discarded."""
    discarded: list[CachedToken] = []
    cache = TokenCache(10, clock, discarded.append)
    short = Vault(clock, lease=10)
    long = Vault(clock, lease=100)
    gone, _ = get(cache, short, key("vanished"))
    get(cache, long, key("staying"))
    clock.advance(10)
    get(cache, long, key("new"))

    assert discarded == [gone]
    assert len(cache) == 2


@pytest.mark.parametrize("capacity", [pytest.param(0, id="zero"), pytest.param(-1, id="negative")])
def test_capacity_zero_or_less_disables_the_cache(clock: Clock, vault: Vault, capacity: int) -> None:
    """With `-cache-size=0` every get logs in, nothing is kept and nothing is renewed."""
    discarded: list[CachedToken] = []
    cache = TokenCache(capacity, clock, discarded.append)
    results = [get(cache, vault) for _ in range(3)]

    assert [(token.value, hit) for token, hit in results] == [
        ("hvs.token-1", False),
        ("hvs.token-2", False),
        ("hvs.token-3", False),
    ]
    assert len(cache) == 0
    assert vault.renewals == []
    assert discarded == []


def test_invalidate_removes_only_the_token_that_was_refused(
    cache: TokenCache, vault: Vault, clock: Clock
) -> None:
    """A refused token is forgotten, but not a newer token another Mount has put there since."""
    first, _ = get(cache, vault)
    clock.advance(25)
    vault.renew_grant = None
    second, _ = get(cache, vault)  # replaced by a login

    cache.invalidate(key(), first)  # a Mount that still held the old token
    assert get(cache, vault) == (second, True)

    cache.invalidate(key(), second)
    assert len(cache) == 0
    token, from_cache = get(cache, vault)
    assert (token.value, from_cache) == ("hvs.token-3", False)


def test_invalidate_matches_by_identity_not_by_equal_fields(cache: TokenCache, vault: Vault) -> None:
    """An equal-looking copy of the cached token does not remove it; the cached object itself does."""
    first, _ = get(cache, vault)
    cache.invalidate(key(), replace(first))
    assert len(cache) == 1
    cache.invalidate(key("someone-else"), first)
    assert len(cache) == 1
    cache.invalidate(key(), first)
    assert len(cache) == 0


def test_invalidate_discards(cache: TokenCache, vault: Vault, discarded: list[CachedToken]) -> None:
    """An invalidated token leaves the cache like any other: on_discard (revocation) sees it."""
    first, _ = get(cache, vault)
    cache.invalidate(key(), first)
    assert discarded == [first]


def test_without_on_discard_replacement_and_eviction_still_work(clock: Clock, vault: Vault) -> None:
    """on_discard is optional: with None the cache replaces and evicts silently."""
    cache = TokenCache(1, clock)
    get(cache, vault, key("a"))
    get(cache, vault, key("b"))
    assert len(cache) == 1
    assert get(cache, vault, key("b"))[1] is True


def test_a_new_jwt_of_the_same_identity_keeps_the_older_token(
    cache: TokenCache, vault: Vault, clock: Clock
) -> None:
    """The kubelet rotated the pod's JWT: one login proves it, and the older token (with its leases) stays."""
    first, _ = get(cache, vault)
    rotated = jwt_digest("jwt-of-app-0-rotated")
    proof = cached_token("hvs.proof", first.identity, LEASE, True, clock(), frozenset({rotated}))
    token, from_cache = cache.get(key(), rotated, lambda: proof, vault.renew)
    assert (token.value, from_cache) == (first.value, False)
    assert token.proves(DIGEST)
    assert token.proves(rotated)
    # Later polls with the rotated JWT are plain hits.
    assert cache.get(key(), rotated, vault.login, vault.renew) == (token, True)


def test_a_new_jwt_of_another_identity_replaces_the_token(
    cache: TokenCache, vault: Vault, discarded: list[CachedToken], clock: Clock
) -> None:
    """A JWT that logs in as someone else never reuses the cached token: the new login replaces it."""
    first, _ = get(cache, vault)
    other = jwt_digest("jwt-of-someone-else")
    theirs = cached_token("hvs.theirs", "entity-2", LEASE, True, clock(), frozenset({other}))
    token, from_cache = cache.get(key(), other, lambda: theirs, vault.renew)
    assert (token, from_cache) == (theirs, False)
    assert not token.proves(DIGEST)
    assert discarded == [first]


def test_an_unproven_jwt_is_never_served_the_cached_token(cache: TokenCache, vault: Vault) -> None:
    """A request whose JWT the cache has not seen logs in, even while the cached token is fresh."""
    get(cache, vault)
    calls = []

    def refused() -> CachedToken:
        calls.append("login")
        raise PermissionDenied("service account name not authorized")

    with pytest.raises(PermissionDenied, match="service account name not authorized"):
        cache.get(key(), jwt_digest("forged"), refused, vault.renew)
    assert calls == ["login"]


# --- tokens restored from the restart state ----------------------------------------------


def restored_cache(clock: Clock, vault: Vault, refused: list[CachedToken]) -> TokenCache:
    """A cache holding one token restored from disk (unverified), as `-state-dir` fills it at start."""
    cache = TokenCache(10, clock, on_refused=refused.append)
    token = vault.login()
    vault.logins = 0
    assert cache.restore([TokenEntry(key(), token, clock())]) == 1
    return cache


def test_a_restored_token_is_looked_up_once_then_served(clock: Clock, vault: Vault) -> None:
    """First use asks Vault whether it still knows the token; no login, no renewal; later uses are hits."""
    refused: list[CachedToken] = []
    cache = restored_cache(clock, vault, refused)
    looked_up: list[str] = []

    def verify(token: CachedToken) -> bool:
        looked_up.append(token.value)
        return True

    token, from_cache = cache.get(key(), DIGEST, vault.login, vault.renew, verify)
    assert (token.value, token.verified, from_cache) == ("hvs.token-1", True, True)
    assert cache.get(key(), DIGEST, vault.login, vault.renew, verify) == (token, True)
    assert (looked_up, vault.logins, vault.renewals, refused) == (["hvs.token-1"], 0, [], [])


def test_a_restored_token_vault_refuses_is_forgotten_and_replaced_by_a_login(
    clock: Clock, vault: Vault
) -> None:
    """Revoked while the provider was down: a fresh login; the refused token is reported (its leases died)."""
    refused: list[CachedToken] = []
    cache = restored_cache(clock, vault, refused)
    token, from_cache = cache.get(key(), DIGEST, vault.login, vault.renew, lambda _: False)
    assert (token.value, from_cache, vault.logins) == ("hvs.token-1", False, 1)
    assert [t.value for t in refused] == ["hvs.token-1"]
    assert cache.snapshot()[0].token is token


def test_a_restored_token_needs_the_jwt_that_proved_it(clock: Clock, vault: Vault) -> None:
    """A JWT not among the restored digests logs in, even though Vault still knows the token."""
    cache = restored_cache(clock, vault, [])
    other = jwt_digest("jwt-of-someone-else")
    theirs = cached_token("hvs.theirs", "entity-2", LEASE, True, clock(), frozenset({other}))
    token, from_cache = cache.get(key(), other, lambda: theirs, vault.renew, lambda _: True)
    assert (token, from_cache) == (theirs, False)


def test_restore_keeps_the_most_recent_entries_within_capacity(clock: Clock, vault: Vault) -> None:
    cache = TokenCache(2, clock)
    entries = [TokenEntry(key(f"app-{n}"), vault.login(), clock()) for n in range(3)]
    assert cache.restore(entries) == 2
    assert [entry.key.pod_name for entry in cache.snapshot()] == ["app-1", "app-2"]
    assert all(not entry.token.verified for entry in cache.snapshot())


def test_changes_and_hits_are_counted_for_the_state_writer(cache: TokenCache, vault: Vault) -> None:
    get(cache, vault)
    assert (cache.changes, cache.touches) == (1, 0)
    get(cache, vault)
    assert (cache.changes, cache.touches) == (1, 1)


def test_the_digest_key_never_shows() -> None:
    assert repr(JwtDigester(b"secret-key-bytes" * 2)) == "JwtDigester(<key hidden>)"
    assert JwtDigester(b"a" * 32)("jwt") != JwtDigester(b"b" * 32)("jwt")
