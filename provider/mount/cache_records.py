"""Cache entries ↔ plain JSON records, for the restart state (`-state-dir`).

Entries (TokenEntry, LeaseEntry and everything they hold: keys, tokens, kept answers)
are written field by field from `dataclasses.fields` and read back by their type hints,
so a field added to any of them (TokenKey, LeaseKey, VaultRequest, Held, ...) is kept
with no change here; a record whose fields differ from the class's (written by another
provider version) is dropped, never half-read. Fields marked `metadata={"clock":
"monotonic"}` are written as wall-clock times and read back onto this process's
monotonic clock (math.inf as null). A field typed `Any` is parsed JSON from Vault: it is
written as JSON text keeping its numbers' digits and its keys' order as Vault sent
them, so the files rendered from it after a restart are byte-identical.
"""

from __future__ import annotations

import base64
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

from provider.mount.lease_cache import LeaseEntry
from provider.mount.token_cache import TokenEntry
from provider.render import gojson

__all__ = [
    "IDLE_SECONDS",
    "Clocks",
    "RecordError",
    "Restored",
    "from_record",
    "lease_records",
    "payload_text",
    "record",
    "restored_leases",
    "restored_tokens",
    "token_records",
]

_RAW = "raw_base64"

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


def record(value: Any, clocks: Clocks | None = None) -> Any:
    """A dataclass (and what it holds) as JSON values, field by field; `clocks` for monotonic fields."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        hints = _hints(type(value))
        out: dict[str, Any] = {}
        for f in _stored_fields(type(value)):
            item = getattr(value, f.name)
            if _monotonic(f):
                out[f.name] = _clocks(clocks).to_wall(item)
            elif hints[f.name] is Any:
                # A raw (non-JSON) answer, such as pki/ca/pem, travels as base64 beside the JSON ones.
                raw = isinstance(item, bytes)
                out[f.name] = {_RAW: base64.b64encode(item).decode()} if raw else payload_text(item)
            else:
                out[f.name] = record(item, clocks)
        return out
    if isinstance(value, frozenset):
        return sorted(record(item, clocks) for item in value)
    if isinstance(value, (tuple, list)):
        return [record(item, clocks) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot keep a {type(value).__name__} in the restart state")


def from_record(cls: type[T], value: Any, clocks: Clocks | None = None) -> T:
    """The dataclass `cls` from `record`'s output; RecordError when the shape differs."""
    return typing.cast(T, _typed(cls, value, clocks))


def _typed(hint: Any, value: Any, clocks: Clocks | None) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _dataclass(hint, value, clocks)
    if hint is Any:
        if isinstance(value, dict) and set(value) == {_RAW} and isinstance(value[_RAW], str):
            try:
                return base64.b64decode(value[_RAW], validate=True)
            except ValueError as exc:
                raise RecordError("a raw Vault answer is not base64") from exc
        if not isinstance(value, str):
            raise RecordError("a Vault answer is not JSON text")
        try:
            return gojson.loads(value)
        except (ValueError, RecursionError) as exc:
            raise RecordError("a Vault answer is not JSON") from exc
    if origin in (typing.Union, types.UnionType):
        for option in args:
            try:
                return _typed(option, value, clocks)
            except RecordError:
                continue
        raise RecordError(f"{_kind(value)} is none of {hint}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise RecordError(f"{_kind(value)} is not one of {args}")
    if origin in (tuple, frozenset) and isinstance(value, list):
        if origin is frozenset:
            return frozenset(_typed(args[0], item, clocks) for item in value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_typed(args[0], item, clocks) for item in value)
        if len(args) == len(value):
            return tuple(_typed(arg, item, clocks) for arg, item in zip(args, value, strict=True))
    if hint is type(None) and value is None:
        return None
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint in (str, int, bool) and type(value) is hint:
        return value
    raise RecordError(f"{_kind(value)} is not a {hint}")


def _kind(value: Any) -> str:
    """What a value is, never what it says: records hold tokens and secrets."""
    return f"a {type(value).__name__} value"


def _stored_fields(cls: type) -> list[dataclasses.Field[Any]]:
    """The fields `__init__` takes: the others are derived from them (a cached hash) and not kept."""
    return [f for f in dataclasses.fields(cls) if f.init]


def _dataclass(cls: type, value: Any, clocks: Clocks | None) -> Any:
    fields = _stored_fields(cls)
    if not isinstance(value, dict) or set(value) != {f.name for f in fields}:
        raise RecordError(f"the fields of {cls.__name__} differ")
    hints = _hints(cls)
    values = {}
    for f in fields:
        if _monotonic(f):
            values[f.name] = _clocks(clocks).to_monotonic(_typed(float | None, value[f.name], clocks))
        else:
            values[f.name] = _typed(hints[f.name], value[f.name], clocks)
    return cls(**values)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _monotonic(f: dataclasses.Field[Any]) -> bool:
    return f.metadata.get("clock") == "monotonic"


def _clocks(clocks: Clocks | None) -> Clocks:
    if clocks is None:
        raise TypeError("a monotonic time needs the clocks to convert it")
    return clocks


def token_records(entries: list[TokenEntry], clocks: Clocks) -> list[Any]:
    """The records of the live, recently used tokens."""
    return [record(entry, clocks) for entry in entries if clocks.monotonic - entry.last_used < IDLE_SECONDS]


def lease_records(entries: list[LeaseEntry], clocks: Clocks) -> list[Any]:
    """The records of the live, recently used kept answers."""
    return [record(entry, clocks) for entry in entries if clocks.monotonic - entry.last_used < IDLE_SECONDS]


def restored_tokens(records: Any, clocks: Clocks) -> Restored[TokenEntry]:
    """Token entries from records, unverified; expired, idle and unreadable ones are dropped and counted."""
    restored = _restored(TokenEntry, records, clocks, lambda e: e.token.expires_at)
    entries = [
        dataclasses.replace(e, token=dataclasses.replace(e.token, verified=False)) for e in restored.entries
    ]
    return Restored(entries, restored.dropped)


def restored_leases(records: Any, clocks: Clocks) -> Restored[LeaseEntry]:
    """Kept answers from records; expired, idle and unreadable ones are dropped and counted."""
    return _restored(LeaseEntry, records, clocks, lambda e: e.held.expires_at)


def _restored(
    cls: type[_Entry], records: Any, clocks: Clocks, expires_at: Callable[[_Entry], float]
) -> Restored[_Entry]:
    kept: list[_Entry] = []
    dropped: Counter[str] = Counter()
    for item in records if isinstance(records, list) else []:
        try:
            entry = from_record(cls, item, clocks)
        except RecordError:
            dropped["unreadable"] += 1
            continue
        if expires_at(entry) <= clocks.monotonic:
            dropped["expired"] += 1
        elif clocks.monotonic - entry.last_used >= IDLE_SECONDS:
            dropped["idle"] += 1
        else:
            kept.append(entry)
    return Restored(kept, dropped)


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
