"""Cache entries ↔ plain JSON records, for the restart state (`-state-dir`).

Keys are written field by field from `dataclasses.fields` and read back by their
type hints, so a field added to TokenKey, LeaseKey or VaultRequest is kept with no
change here; a record whose fields differ from the class's (written by another
provider version) is dropped, never half-read. Monotonic times become wall-clock
times on the way out and monotonic again on the way in. A kept answer's payload is
written as JSON text keeping its numbers' digits and its keys' order as Vault sent
them, so the files rendered from it after a restart are byte-identical.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from provider.mount.leases import Held, LeaseEntry, LeaseKey
from provider.mount.token_cache import CachedToken, TokenEntry, TokenKey
from provider.render import gojson
from provider.vault.replies import VaultReply

__all__ = [
    "IDLE_SECONDS",
    "Clocks",
    "RecordError",
    "Restored",
    "key_from_record",
    "key_record",
    "lease_records",
    "payload_text",
    "restored_leases",
    "restored_tokens",
    "token_records",
]

# An entry no Mount used for this long belongs to a pod that is gone: a live pod's
# volume is polled every rotation interval (minutes) and its token re-proven at least
# hourly. A day also covers a node that was down overnight, while a restored lease or
# token older than that would mostly have expired in Vault anyway.
IDLE_SECONDS = 24 * 3600.0

T = TypeVar("T")
_Entry = TypeVar("_Entry", TokenEntry, LeaseEntry)


class RecordError(ValueError):
    """A record does not have the shape this provider version writes."""


@dataclass(frozen=True)
class Clocks:
    """One reading of both clocks, to move times between monotonic (in memory) and wall (on disk)."""

    monotonic: float
    wall: float

    def to_wall(self, monotonic: float) -> float | None:
        return None if math.isinf(monotonic) else self.wall + (monotonic - self.monotonic)

    def to_monotonic(self, wall: float | None) -> float:
        return math.inf if wall is None else self.monotonic + (wall - self.wall)


@dataclass(frozen=True)
class Restored(Generic[_Entry]):
    """Entries read back, and how many were dropped for which reason (expired, idle, unreadable)."""

    entries: list[_Entry]
    dropped: Counter[str]


def key_record(value: Any) -> Any:
    """A key dataclass (and what it holds) as JSON values, field by field."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: key_record(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list, frozenset)):
        return [key_record(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot keep a {type(value).__name__} in the restart state")


def key_from_record(cls: type[T], record: Any) -> T:
    """The key dataclass `cls` from `key_record`'s output; RecordError when the shape differs."""
    return typing.cast(T, _typed(cls, record))


def _typed(hint: Any, value: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        names = [f.name for f in dataclasses.fields(hint)]
        if not isinstance(value, dict) or set(value) != set(names):
            raise RecordError(f"the fields of {hint.__name__} differ")
        hints = _hints(hint)
        return hint(**{name: _typed(hints[name], value[name]) for name in names})
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _typed(option, value)
            except RecordError:
                continue
        raise RecordError(f"{value!r:.40} is none of {hint}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise RecordError(f"{value!r:.40} is not one of {args}")
    if origin in (tuple, frozenset) and isinstance(value, list):
        if origin is frozenset:
            return frozenset(_typed(args[0], item) for item in value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_typed(args[0], item) for item in value)
        if len(args) == len(value):
            return tuple(_typed(arg, item) for arg, item in zip(args, value, strict=True))
    if hint is type(None) and value is None:
        return None
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint in (str, int, bool) and type(value) is hint:
        return value
    raise RecordError(f"{value!r:.40} is not a {hint}")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def token_records(entries: list[TokenEntry], clocks: Clocks) -> list[dict[str, Any]]:
    """The records of the live, recently used tokens."""
    return [
        {
            "key": key_record(entry.key),
            "value": entry.token.value,
            "identity": entry.token.identity,
            "lease_seconds": entry.token.lease_seconds,
            "renewable": entry.token.renewable,
            "expires_at": clocks.to_wall(entry.token.expires_at),
            "refresh_at": clocks.to_wall(entry.token.refresh_at),
            "proven_jwts": sorted(entry.token.proven_jwts),
            "last_used": clocks.to_wall(entry.last_used),
        }
        for entry in entries
        if clocks.monotonic - entry.last_used < IDLE_SECONDS
    ]


def lease_records(entries: list[LeaseEntry], clocks: Clocks) -> list[dict[str, Any]]:
    """The records of the live, recently used kept answers."""
    return [
        {
            "key": key_record(entry.key),
            "status": entry.held.reply.status,
            "payload": payload_text(entry.held.reply.payload),
            "lease_id": entry.held.lease_id,
            "renewable": entry.held.renewable,
            "duration": entry.held.duration,
            "expires_at": clocks.to_wall(entry.held.expires_at),
            "refresh_at": clocks.to_wall(entry.held.refresh_at),
            "owner": entry.held.owner,
            "last_used": clocks.to_wall(entry.last_used),
        }
        for entry in entries
        if clocks.monotonic - entry.last_used < IDLE_SECONDS
    ]


def restored_tokens(records: Any, clocks: Clocks) -> Restored[TokenEntry]:
    """Token entries from records; expired, idle and unreadable ones are dropped and counted."""

    def entry(record: dict[str, Any]) -> TokenEntry:
        token = CachedToken(
            _get(record, "value", str),
            _get(record, "identity", str),
            _get(record, "lease_seconds", int),
            _get(record, "renewable", bool),
            clocks.to_monotonic(_get(record, "expires_at", float | None)),
            clocks.to_monotonic(_get(record, "refresh_at", float | None)),
            frozenset(_get(record, "proven_jwts", tuple[str, ...])),
            verified=False,
        )
        last_used = clocks.to_monotonic(_get(record, "last_used", float))
        return TokenEntry(key_from_record(TokenKey, record.get("key")), token, last_used)

    return _restored(records, clocks, entry, lambda e: e.token.expires_at)


def restored_leases(records: Any, clocks: Clocks) -> Restored[LeaseEntry]:
    """Kept answers from records; expired, idle and unreadable ones are dropped and counted."""

    def entry(record: dict[str, Any]) -> LeaseEntry:
        try:
            payload = gojson.loads(_get(record, "payload", str))
        except (ValueError, RecursionError) as exc:
            raise RecordError("the payload is not JSON") from exc
        held = Held(
            VaultReply(_get(record, "status", int), payload),
            _get(record, "lease_id", str),
            _get(record, "renewable", bool),
            _get(record, "duration", float),
            clocks.to_monotonic(_get(record, "expires_at", float | None)),
            clocks.to_monotonic(_get(record, "refresh_at", float | None)),
            _get(record, "owner", str),
        )
        last_used = clocks.to_monotonic(_get(record, "last_used", float))
        return LeaseEntry(key_from_record(LeaseKey, record.get("key")), held, last_used)

    return _restored(records, clocks, entry, lambda e: e.held.expires_at)


def _restored(
    records: Any,
    clocks: Clocks,
    entry: Callable[[dict[str, Any]], _Entry],
    expires_at: Callable[[_Entry], float],
) -> Restored[_Entry]:
    kept: list[_Entry] = []
    dropped: Counter[str] = Counter()
    for record in records if isinstance(records, list) else []:
        try:
            if not isinstance(record, dict):
                raise RecordError("not an object")
            restored = entry(record)
        except RecordError:
            dropped["unreadable"] += 1
            continue
        if expires_at(restored) <= clocks.monotonic:
            dropped["expired"] += 1
        elif clocks.monotonic - restored.last_used >= IDLE_SECONDS:
            dropped["idle"] += 1
        else:
            kept.append(restored)
    return Restored(kept, dropped)


def _get(record: dict[str, Any], name: str, hint: Any) -> Any:
    if name not in record:
        raise RecordError(f"no {name}")
    return _typed(hint, record[name])


def payload_text(payload: Any) -> str:
    """JSON text of a parsed Vault answer, keeping key order and JsonNumber digits (gojson sorts keys)."""
    out: list[str] = []
    _write(payload, out)
    return "".join(out)


def _write(value: Any, out: list[str]) -> None:
    if isinstance(value, gojson.JsonNumber):
        out.append(str.__str__(value))
    elif isinstance(value, dict):
        out.append("{")
        for index, (name, item) in enumerate(value.items()):
            out.append(("," if index else "") + json.dumps(str(name)) + ":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for index, item in enumerate(value):
            out.append("," if index else "")
            _write(item, out)
        out.append("]")
    else:
        # Strings with ASCII escapes: even a lone surrogate from Vault reads back as it was.
        out.append(json.dumps(value))
