"""provider.mount.cache_records: cache entries to plain records and back, for the restart state.

Keys are built here by filling every field from its type hint (`sample`), the way the
records module reads them: a field added to LeaseKey or TokenKey needs no change here
either.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import typing
from dataclasses import dataclass
from typing import Any, Literal

import pytest

from provider.mount.cache_records import (
    IDLE_SECONDS,
    Clocks,
    RecordError,
    from_record,
    lease_records,
    payload_text,
    record,
    restored_leases,
    restored_tokens,
    token_records,
)
from provider.mount.lease_cache import Held, LeaseEntry, LeaseKey
from provider.mount.token_cache import CachedToken, TokenEntry, TokenKey, cached_token
from provider.render import gojson
from provider.request.vault_request import VaultRequest
from provider.vault.replies import VaultReply

NOW = 5000.0  # monotonic
WALL = 1_800_000_000.0
CLOCKS = Clocks(NOW, WALL)


def sample(hint: Any, name: str = "x") -> Any:
    """A value for every field of a key dataclass, from its type hints."""
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        hints = typing.get_type_hints(hint)
        return hint(**{f.name: sample(hints[f.name], f.name) for f in dataclasses.fields(hint) if f.init})
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        return ((f"{name}-k", f"{name}-v"),) if args[-1] is Ellipsis else tuple(sample(a, name) for a in args)
    if origin is Literal:
        return args[0]
    if args:  # a union: its first option
        return sample(args[0], name)
    return {str: f"{name}-value", int: 7, bool: True, float: 1.5}[hint]


def lease_key() -> LeaseKey:
    key = sample(LeaseKey)
    return dataclasses.replace(
        key, request=VaultRequest("GET", "/v1/database/creds/app", (("a", "b"),), None)
    )


# --- keys --------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [TokenKey, LeaseKey, VaultRequest], ids=lambda cls: cls.__name__)
def test_every_key_field_round_trips(cls: type) -> None:
    key = sample(cls)
    written = json.loads(json.dumps(record(key)))
    assert from_record(cls, written) == key


def test_a_request_body_and_an_empty_query_round_trip() -> None:
    request = VaultRequest("PUT", "/v1/pki/issue/app", (), '{"common_name":"app.example"}')
    assert from_record(VaultRequest, json.loads(json.dumps(record(request)))) == request
    # Its hash is derived (and seeded per process): never kept.
    assert set(record(request)) == {"method", "path", "query", "body"}


@dataclass(frozen=True)
class FutureKey:
    """A key the way another engineer may grow one: a Literal, an optional, a nested request."""

    scope: str
    kind: Literal["pod", "workload"]
    ttl: int | None
    request: VaultRequest


def test_a_key_with_new_kinds_of_fields_round_trips_without_a_change() -> None:
    key = FutureKey("workload:team-a/app", "workload", None, VaultRequest("GET", "/v1/secret/data/x"))
    assert from_record(FutureKey, json.loads(json.dumps(record(key)))) == key


@pytest.mark.parametrize(
    ("written", "message"),
    [
        pytest.param(
            {"scope": "s", "kind": "pod", "ttl": 1}, "the fields of FutureKey differ", id="a-missing-field"
        ),
        pytest.param(
            {"scope": "s", "kind": "pod", "ttl": 1, "request": None, "pod_uid": "u"},
            "the fields of FutureKey differ",
            id="an-extra-field",
        ),
        pytest.param(
            {"scope": 3, "kind": "pod", "ttl": 1, "request": None},
            "a int value is not a <class 'str'>",
            id="a-number-for-a-string",
        ),
        pytest.param(
            {"scope": "s", "kind": "node", "ttl": 1, "request": None},
            "a str value is not one of ('pod', 'workload')",
            id="a-literal-out-of-range",
        ),
        pytest.param(
            {"scope": "s", "kind": "pod", "ttl": True, "request": None},
            "a bool value is none of int | None",
            id="a-boolean-for-an-int",
        ),
        pytest.param("not an object", "the fields of FutureKey differ", id="not-an-object"),
    ],
)
def test_a_record_of_another_shape_is_refused(written: Any, message: str) -> None:
    with pytest.raises(RecordError, match=f"^{re.escape(message)}$"):
        from_record(FutureKey, written)


@dataclass(frozen=True)
class FutureEntry:
    """An entry grown the way Held may grow: a monotonic time and a Vault answer of their own."""

    kind: Literal["static"]
    seen_at: float = dataclasses.field(metadata={"clock": "monotonic"})
    answer: Any = None


def test_an_entry_with_new_times_and_answers_round_trips_without_a_change() -> None:
    entry = FutureEntry("static", NOW - 5, gojson.loads(b'{"b":1.0,"a":[2]}'))
    written = json.loads(json.dumps(record(entry, CLOCKS)))
    assert written == {"kind": "static", "seen_at": WALL - 5, "answer": '{"b":1.0,"a":[2]}'}
    assert from_record(FutureEntry, written, Clocks(7.0, WALL)) == FutureEntry("static", 2.0, entry.answer)


def test_an_unsupported_value_is_not_written() -> None:
    with pytest.raises(TypeError, match=r"^cannot keep a bytes in the restart state$"):
        record(FutureKey("s", "pod", None, b"raw"))  # type: ignore[arg-type]


# --- payloads ----------------------------------------------------------------------------

VAULT_BODY = (
    b'{"request_id":"r","lease_id":"database/creds/app/AbC","renewable":true,"lease_duration":3600,'
    b'"data":{"username":"v-app-AbC","password":"p\\u003cw\\ud800","ttl":1.50e2,"big":123456789012345678901234567890,'
    b'"zeta":-0.0,"alpha":[1,2.0,{"z":1,"a":null}],"flag":false}}'
)


def test_a_payload_round_trips_numbers_key_order_and_strings_exactly() -> None:
    """Digits (1.50e2, 2.0, -0.0, 30 digits), Vault's key order, a lone surrogate: all as they were."""
    payload = gojson.loads(VAULT_BODY)
    again = gojson.loads(payload_text(payload))
    assert again == payload
    assert list(again["data"]) == list(payload["data"])  # not sorted
    assert [str.__str__(again["data"][name]) for name in ("ttl", "big", "zeta")] == [
        "1.50e2",
        "123456789012345678901234567890",
        "-0.0",
    ]
    assert all(isinstance(again["data"][name], gojson.JsonNumber) for name in ("ttl", "big", "zeta"))
    assert gojson.dumps(again) == gojson.dumps(payload)
    assert payload_text(again) == payload_text(payload)


# --- entries -----------------------------------------------------------------------------


def token_entry(lease: int = 3600, used_ago: float = 0.0) -> TokenEntry:
    token = cached_token("hvs.secret-token", "entity-1", lease, True, NOW - 10, frozenset({"d1", "d2"}))
    return TokenEntry(sample(TokenKey), token, NOW - used_ago)


def lease_entry(expires_in: float = 600.0, used_ago: float = 0.0) -> LeaseEntry:
    reply = VaultReply(200, gojson.loads(VAULT_BODY))
    held = Held(
        reply, "database/creds/app/AbC", True, 3600.0, NOW + expires_in, NOW + expires_in / 2, "owner-1"
    )
    return LeaseEntry(lease_key(), held, NOW - used_ago)


def test_a_token_survives_a_restart_with_its_times_moved_to_the_new_clock() -> None:
    """Saved at monotonic 5000, read back by a process whose monotonic clock reads 10 after 100 s."""
    records = json.loads(json.dumps(token_records([token_entry()], CLOCKS)))
    later = Clocks(10.0, WALL + 100)
    restored = restored_tokens(records, later)
    assert restored.dropped == {}
    (entry,) = restored.entries
    original = token_entry().token
    assert entry.key == sample(TokenKey)
    assert entry.token == dataclasses.replace(
        original,
        expires_at=original.expires_at - NOW + 10 - 100,
        refresh_at=original.refresh_at - NOW + 10 - 100,
        verified=False,
    )
    assert entry.last_used == pytest.approx(10 - 100)


def test_a_token_without_expiry_stays_without_expiry() -> None:
    entry = token_entry(lease=0)
    assert entry.token.expires_at == math.inf
    records = json.loads(json.dumps(token_records([entry], CLOCKS)))
    assert records[0]["token"]["expires_at"] is None
    assert restored_tokens(records, CLOCKS).entries[0].token.expires_at == math.inf


def test_a_kept_answer_survives_a_restart() -> None:
    records = json.loads(json.dumps(lease_records([lease_entry()], CLOCKS)))
    restored = restored_leases(records, Clocks(NOW, WALL))
    assert restored.entries == [lease_entry()]
    assert gojson.dumps(restored.entries[0].held.reply.payload) == gojson.dumps(gojson.loads(VAULT_BODY))


def test_a_raw_answer_kept_for_its_refresh_interval_survives_a_restart() -> None:
    """A non-JSON answer (pki/ca/pem) kept under refreshInterval comes back byte for byte."""
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\xff\n-----END CERTIFICATE-----\n"
    held = Held(VaultReply(200, pem), "", False, 60.0, NOW + 60, NOW + 60, static=True)
    entry = LeaseEntry(lease_key(), held, NOW)
    records = json.loads(json.dumps(lease_records([entry], CLOCKS)))
    assert pem.decode("latin-1") not in json.dumps(records)
    assert restored_leases(records, CLOCKS).entries == [entry]


def test_idle_entries_are_not_saved() -> None:
    entries = [token_entry(used_ago=IDLE_SECONDS + 1), token_entry(used_ago=IDLE_SECONDS - 1)]
    assert len(token_records(entries, CLOCKS)) == 1
    assert len(lease_records([lease_entry(used_ago=IDLE_SECONDS)], CLOCKS)) == 0


def test_expired_idle_and_unreadable_entries_are_dropped_on_load_and_counted() -> None:
    records = lease_records([lease_entry(), lease_entry(expires_in=60.0), lease_entry(used_ago=100)], CLOCKS)
    unreadable = json.loads(json.dumps(records[0]))
    unreadable["held"]["reply"]["payload"] = "{not json"
    other_shape = dict(records[0], key={"pod_uid": "u"})
    restored = restored_leases([*records, unreadable, other_shape, "junk"], Clocks(NOW + 120, WALL + 120))
    assert [entry.held.expires_at for entry in restored.entries] == [NOW + 600, NOW + 600]
    assert restored.dropped == {"expired": 1, "unreadable": 3}
    # A day later a live lease nobody used is idle.
    much_later = Clocks(NOW, WALL + IDLE_SECONDS)
    restored = restored_leases(lease_records([lease_entry(expires_in=IDLE_SECONDS * 2)], CLOCKS), much_later)
    assert restored.dropped == {"idle": 1}


def test_a_monotonic_field_is_written_as_wall_clock_time() -> None:
    """Only the fields marked monotonic move between clocks: a lease's duration stays as it is."""
    (written,) = lease_records([lease_entry()], CLOCKS)
    assert written["held"]["expires_at"] == WALL + 600
    assert written["held"]["refresh_at"] == WALL + 300
    assert written["held"]["duration"] == 3600.0
    assert written["last_used"] == WALL
    assert json.loads(written["held"]["reply"]["payload"])["data"]["username"] == "v-app-AbC"


def test_a_monotonic_field_needs_the_clocks() -> None:
    with pytest.raises(TypeError, match=r"^a monotonic time needs the clocks to convert it$"):
        record(token_entry())


def test_a_token_record_missing_a_field_is_unreadable() -> None:
    written = token_records([token_entry()], CLOCKS)[0]
    del written["token"]["proven_jwts"]
    assert restored_tokens([written], CLOCKS).dropped == {"unreadable": 1}
    assert restored_tokens("not a list", CLOCKS).entries == []


def test_restored_tokens_are_unverified() -> None:
    assert isinstance(token_entry().token, CachedToken)
    (entry,) = restored_tokens(token_records([token_entry()], CLOCKS), CLOCKS).entries
    assert entry.token.verified is False
