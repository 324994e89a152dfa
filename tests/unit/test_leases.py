"""provider.leases, pure parts: which answers are kept and for how long, and the bounded cache.

Replies are parsed from JSON text with `gojson`, as the Vault client parses them
(numbers arrive as Go-compatible number strings), in the shapes OpenBao sends for
database credentials, PKI issuance, KV v1 and v2.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from provider.mount.lease_cache import Held, LeaseCache, LeaseKey, token_owner
from provider.mount.leases import CERT_SHARE, REFETCH_SHARE, RENEW_SHARE, hold_policy
from provider.render import gojson
from provider.request.objects import VaultRequest
from provider.vault.client import VaultReply

NOW = 500.0  # monotonic
WALL = 1_700_000_000.0  # time.time()

DB_CREDS = VaultRequest("GET", "/v1/database/creds/app")
PKI_ISSUE = VaultRequest("PUT", "/v1/pki/issue/web", body='{"common_name":"a.example.test"}')
KV_READ = VaultRequest("GET", "/v1/secret/data/app/db")


def reply(envelope: dict[str, Any]) -> VaultReply:
    """A 200 answer parsed exactly as the Vault client parses it."""
    return VaultReply(200, gojson.loads(json.dumps(envelope).encode()))


def envelope(
    lease_id: str = "", lease_duration: Any = 0, renewable: bool = False, data: Any = None
) -> dict[str, Any]:
    return {
        "request_id": "2f1b4c1e-0000-0000-0000-000000000000",
        "lease_id": lease_id,
        "renewable": renewable,
        "lease_duration": lease_duration,
        "data": data if data is not None else {},
        "wrap_info": None,
        "warnings": None,
        "auth": None,
    }


DB_DATA = {"username": "v-kubernet-app-abc-1700000000", "password": "A1a-secret"}
CERT_DATA = {
    "certificate": "-----BEGIN CERTIFICATE-----\n...",
    "issuing_ca": "-----BEGIN CERTIFICATE-----\n...",
    "private_key": "-----BEGIN EC PRIVATE KEY-----\n...",
    "private_key_type": "ec",
    "serial_number": "1a:2b",
    "expiration": int(WALL) + 90,
}


# --- hold_policy --------------------------------------------------------------------------


def test_shares_are_the_documented_ones() -> None:
    """Renew at 2/3, re-fetch a non-renewable lease at 85%, replace a certificate at 2/3."""
    assert RENEW_SHARE == CERT_SHARE == 2 / 3
    assert REFETCH_SHARE == 0.85


@pytest.mark.parametrize(
    ("request_", "answer", "expected"),
    [
        pytest.param(
            DB_CREDS,
            envelope("database/creds/app/AbC", 30, True, DB_DATA),
            ("database/creds/app/AbC", True, 30.0, NOW + 30, NOW + 20),
            id="renewable-lease-renewed-at-two-thirds",
        ),
        pytest.param(
            DB_CREDS,
            envelope("database/creds/app/AbC", 100, False, DB_DATA),
            ("database/creds/app/AbC", False, 100.0, NOW + 100, NOW + 85),
            id="non-renewable-lease-refetched-at-85-percent",
        ),
        pytest.param(
            PKI_ISSUE,
            envelope(data=CERT_DATA),
            ("", False, 90.0, NOW + 90, NOW + 60),
            id="pki-cert-kept-for-two-thirds-of-validity",
        ),
        pytest.param(
            VaultRequest("POST", "/v1/pki/issue/web", body="{}"),
            envelope(data=CERT_DATA),
            ("", False, 90.0, NOW + 90, NOW + 60),
            id="pki-cert-by-post",
        ),
        pytest.param(
            PKI_ISSUE,
            envelope(data={**CERT_DATA, "expiration": str(int(WALL) + 90)}),
            ("", False, 90.0, NOW + 90, NOW + 60),
            id="pki-expiration-as-string",
        ),
        pytest.param(
            # A PKI role with generate_lease=true: the lease rules win over the certificate's.
            PKI_ISSUE,
            envelope("pki/issue/web/XyZ", 60, False, CERT_DATA),
            ("pki/issue/web/XyZ", False, 60.0, NOW + 60, NOW + 51),
            id="pki-with-lease-uses-the-lease",
        ),
    ],
)
def test_answers_that_are_kept(
    request_: VaultRequest, answer: dict[str, Any], expected: tuple[str, bool, float, float, float]
) -> None:
    """Leased and certificate answers are kept: (lease id, renewable, duration, expiry, refresh point)."""
    got = reply(answer)
    held = hold_policy(request_, got, NOW, WALL)
    assert held is not None
    assert held.reply is got
    assert (held.lease_id, held.renewable, held.duration, held.expires_at) == expected[:4]
    assert held.refresh_at == pytest.approx(expected[4])


@pytest.mark.parametrize(
    ("request_", "answer"),
    [
        pytest.param(KV_READ, envelope(data={"data": {"pw": "x"}, "metadata": {"version": 3}}), id="kv2"),
        # KV v1 sends its refresh interval as lease_duration, but no lease id.
        pytest.param(
            VaultRequest("GET", "/v1/kv1/app/db"), envelope("", 2764800, False, {"pw": "x"}), id="kv1"
        ),
        pytest.param(DB_CREDS, envelope("database/creds/app/AbC", 0, True, DB_DATA), id="lease-duration-0"),
        pytest.param(DB_CREDS, envelope("database/creds/app/AbC", -5, True, DB_DATA), id="lease-negative"),
        pytest.param(DB_CREDS, envelope("database/creds/app/AbC", True, True, DB_DATA), id="lease-bool"),
        pytest.param(DB_CREDS, envelope("database/creds/app/AbC", "soon", True, DB_DATA), id="lease-text"),
        pytest.param(
            DB_CREDS, {**envelope("", 0, False, DB_DATA), "lease_id": None}, id="lease-id-null-static-role"
        ),
        pytest.param(
            VaultRequest("GET", "/v1/pki/cert/1a:2b"), envelope(data=CERT_DATA), id="certificate-read-by-get"
        ),
        pytest.param(
            PKI_ISSUE, envelope(data={**CERT_DATA, "expiration": int(WALL) - 1}), id="certificate-expired"
        ),
        pytest.param(PKI_ISSUE, envelope(data={**CERT_DATA, "expiration": int(WALL)}), id="expires-now"),
        pytest.param(
            PKI_ISSUE,
            envelope(data={k: v for k, v in CERT_DATA.items() if k != "expiration"}),
            id="certificate-without-expiration",
        ),
        pytest.param(PKI_ISSUE, envelope(data=["not", "a", "map"]), id="data-not-a-map"),
        pytest.param(KV_READ, None, id="empty-body"),
    ],
)
def test_answers_read_afresh_on_every_poll(request_: VaultRequest, answer: dict[str, Any] | None) -> None:
    """Static reads, answers without a usable lease and expired certificates are not kept."""
    got = VaultReply(204, None) if answer is None else reply(answer)
    assert hold_policy(request_, got, NOW, WALL) is None


def test_a_static_read_is_kept_for_the_refresh_interval() -> None:
    """With refreshInterval a KV answer is kept that long, served only within the asking Mount's interval."""
    held = hold_policy(KV_READ, reply(envelope(data={"data": {"a": "1"}})), NOW, WALL, refresh_seconds=60)
    assert held is not None
    assert (held.static, held.lease_id, held.expires_at, held.refresh_at) == (True, "", NOW + 60, NOW + 60)
    assert held.fresh_for(60, NOW + 59.9)
    assert not held.fresh_for(60, NOW + 60)
    assert held.fresh_for(30, NOW + 29)
    assert not held.fresh_for(30, NOW + 31)
    assert not held.fresh_for(0, NOW), "a class without refreshInterval reads on every poll"


def test_refresh_interval_keeps_reads_only_and_leaves_leases_alone() -> None:
    """A write is never kept as a static answer; a lease keeps its own lease-based policy."""
    transit = VaultRequest("PUT", "/v1/transit/encrypt/app", body='{"plaintext":"eA=="}')
    assert hold_policy(transit, reply(envelope(data={"ciphertext": "v1:x"})), NOW, WALL, 60) is None
    lease = hold_policy(DB_CREDS, reply(envelope("database/creds/app/x", 30, True, DB_DATA)), NOW, WALL, 600)
    assert lease is not None
    assert (lease.static, lease.expires_at) == (False, NOW + 30)


# --- LeaseCache ---------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def lease_key(pod_uid: str = "uid-0", request: VaultRequest = DB_CREDS) -> LeaseKey:
    return LeaseKey("http://127.0.0.1:8200", "", "kubernetes", "app", "entity-1", f"pod:{pod_uid}", request)


def held(expires_in: float = 30.0, name: str = "AbC") -> Held:
    answer = reply(envelope(f"database/creds/app/{name}", 30, True, DB_DATA))
    return Held(answer, f"database/creds/app/{name}", True, 30.0, NOW + expires_in, NOW + expires_in * 2 / 3)


def test_get_of_an_unknown_key_is_none() -> None:
    assert LeaseCache(4, Clock()).get(lease_key()) is None


def test_put_then_get_returns_the_kept_answer() -> None:
    """A kept answer is served for its own key only: another pod or request does not see it."""
    cache = LeaseCache(4, Clock())
    entry = held()
    cache.put(lease_key(), entry)
    assert cache.get(lease_key()) is entry
    assert cache.get(lease_key(pod_uid="uid-1")) is None
    assert cache.get(lease_key(request=VaultRequest("GET", "/v1/database/creds/other"))) is None
    assert len(cache) == 1


def test_put_replaces_and_none_forgets() -> None:
    cache = LeaseCache(4, Clock())
    cache.put(lease_key(), held(name="first"))
    second = held(name="second")
    cache.put(lease_key(), second)
    assert cache.get(lease_key()) is second
    assert len(cache) == 1
    cache.put(lease_key(), None)
    assert cache.get(lease_key()) is None
    assert len(cache) == 0


def test_expired_entry_is_dropped_when_looked_up() -> None:
    """At its expiry an answer is no longer served and leaves the cache."""
    clock = Clock()
    cache = LeaseCache(4, clock)
    cache.put(lease_key(), held(expires_in=30))
    clock.now = NOW + 29.999
    assert cache.get(lease_key()) is not None
    clock.now = NOW + 30
    assert cache.get(lease_key()) is None
    assert len(cache) == 0


def test_expired_entries_of_vanished_pods_go_at_the_next_put() -> None:
    """Entries nobody asks for any more are dropped once expired, when anything is stored."""
    clock = Clock()
    cache = LeaseCache(10, clock)
    cache.put(lease_key("vanished-1"), held(expires_in=10))
    cache.put(lease_key("vanished-2"), held(expires_in=10))
    cache.put(lease_key("alive"), held(expires_in=100))
    clock.now = NOW + 10
    cache.put(lease_key("new"), held(expires_in=100))
    assert len(cache) == 2
    assert cache.get(lease_key("alive")) is not None


def test_least_recently_used_entry_goes_at_capacity() -> None:
    """Beyond capacity the least recently used answer is dropped; a get counts as a use."""
    cache = LeaseCache(2, Clock())
    cache.put(lease_key("a"), held())
    cache.put(lease_key("b"), held())
    assert cache.get(lease_key("a")) is not None
    cache.put(lease_key("c"), held())
    assert len(cache) == 2
    assert cache.get(lease_key("b")) is None
    assert cache.get(lease_key("a")) is not None
    assert cache.get(lease_key("c")) is not None


@pytest.mark.parametrize("capacity", [pytest.param(0, id="zero"), pytest.param(-3, id="negative")])
def test_capacity_zero_or_less_keeps_nothing(capacity: int) -> None:
    """With the cache disabled every poll issues anew."""
    cache = LeaseCache(capacity, Clock())
    cache.put(lease_key(), held())
    assert cache.get(lease_key()) is None
    assert len(cache) == 0


def test_forget_owner_drops_only_what_that_token_obtained() -> None:
    """A restored token Vault refused: its kept answers go, another token's stay."""
    cache = LeaseCache(10, Clock())
    mine = [lease_key("uid-0"), lease_key("uid-0", PKI_ISSUE)]
    for key in mine:
        cache.put(key, replace(held(), owner=token_owner("hvs.mine")))
    cache.put(lease_key("uid-1"), replace(held(), owner=token_owner("hvs.theirs")))
    cache.forget_owner(token_owner("hvs.mine"))
    assert [cache.get(key) for key in mine] == [None, None]
    assert cache.get(lease_key("uid-1")) is not None


def test_token_owner_names_a_token_without_showing_it() -> None:
    assert token_owner("hvs.abc") == token_owner("hvs.abc") != token_owner("hvs.abd")
    assert "abc" not in token_owner("hvs.abc")


def test_snapshot_and_restore_keep_order_last_use_and_capacity() -> None:
    clock = Clock()
    cache = LeaseCache(10, clock)
    for uid in ("uid-0", "uid-1", "uid-2"):
        cache.put(lease_key(uid), held())
        clock.now += 1
    assert cache.get(lease_key("uid-0")) is not None  # now the most recently used
    snapshot = cache.snapshot()
    assert [entry.key for entry in snapshot] == [lease_key("uid-1"), lease_key("uid-2"), lease_key("uid-0")]
    assert [entry.last_used for entry in snapshot] == [NOW + 1, NOW + 2, NOW + 3]
    smaller = LeaseCache(2, Clock())
    assert smaller.restore(snapshot) == 2
    assert [entry.key for entry in smaller.snapshot()] == [lease_key("uid-2"), lease_key("uid-0")]
    assert (smaller.changes, cache.changes, cache.touches) == (0, 3, 1)


def test_an_answer_that_is_not_kept_changes_nothing_the_state_writer_sees() -> None:
    """Forgetting a key that was never kept (every KV read of every poll) is not a change to save."""
    cache = LeaseCache(10, Clock())
    cache.put(lease_key("kept"), held())
    before = cache.changes
    for _ in range(5):
        cache.put(lease_key("never-kept"), None)
    assert cache.changes == before
    cache.put(lease_key("kept"), None)
    assert cache.changes == before + 1
    assert len(cache) == 0
