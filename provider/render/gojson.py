"""JSON text the way Go's encoding/json writes it.

Upstream writes non-string secret values and whole responses with Go's json.Marshal,
and the driver builds `attributes` with it too. Byte-identical files and attributes
need the same rules: map keys sorted, no spaces, `<`, `>`, `&`, U+2028 and U+2029
escaped, and numbers written exactly as the source sent them. Numbers are carried
as `JsonNumber` (the original text) from `loads` to `dumps` for that last rule.
"""

from __future__ import annotations

import codecs
import json
import math
from typing import Any, TypeGuard

__all__ = [
    "JsonNumber",
    "RawJson",
    "dumps",
    "dumps_fields",
    "is_text",
    "loads",
    "string_values",
    "strings_in",
    "utf8",
]


class JsonNumber(str):
    """A JSON number kept as the text Vault sent (Go decodes with UseNumber)."""

    __slots__ = ()


class RawJson(str):
    """Already-encoded JSON text, written as it is (a nested struct's own field order)."""

    __slots__ = ()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _replace_each_byte(error: UnicodeError) -> tuple[str, int]:
    # Go's decoder replaces every byte of an invalid sequence; Python's "replace"
    # gives one U+FFFD per maximal invalid subpart.
    assert isinstance(error, UnicodeDecodeError)
    return "\ufffd" * (error.end - error.start), error.end


def _replace_surrogates(error: UnicodeError) -> tuple[bytes, int]:
    # A lone surrogate (from a JSON "\ud800" escape) has no UTF-8 form; Go writes U+FFFD.
    # (The UTF-8 encoder takes only ASCII text from a handler, so the bytes are spelled out.)
    assert isinstance(error, UnicodeEncodeError)
    return "\ufffd".encode() * (error.end - error.start), error.end


codecs.register_error("gojson-replace", _replace_each_byte)
codecs.register_error("gojson-surrogates", _replace_surrogates)


def is_text(value: Any) -> TypeGuard[str]:
    """A JSON string (numbers are kept as JsonNumber, a str subclass, and are not text)."""
    return isinstance(value, str) and not isinstance(value, (JsonNumber, RawJson))


def string_values(text: str) -> list[str]:
    """Every string anywhere in a JSON document (keys excepted); [] for text that is not JSON."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return []
    return strings_in(document)


def strings_in(value: Any) -> list[str]:
    """Every string anywhere in a parsed JSON value (keys excepted)."""
    stack: list[Any] = [value]
    values = []
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            values.append(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return values


def utf8(text: str) -> bytes:
    """The UTF-8 bytes Go would write for a decoded JSON string."""
    return text.encode("utf-8", errors="gojson-surrogates")


# One decoder for every answer: json.loads with hooks builds a new one per call; it keeps no state.
_DECODER = json.JSONDecoder(parse_int=JsonNumber, parse_float=JsonNumber, parse_constant=_reject_constant)


def loads(data: bytes | str) -> Any:
    """Parse JSON, keeping numbers as `JsonNumber`; invalid UTF-8 becomes U+FFFD as in Go."""
    text = data.decode("utf-8", errors="gojson-replace") if isinstance(data, bytes) else data
    return _DECODER.decode(text)


_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    # Go 1.22 and later write these two short forms too.
    "\b": "\\b",
    "\f": "\\f",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _string(text: str) -> str:
    out = ['"']
    for char in text:
        escaped = _ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif char < " ":
            out.append(f"\\u{ord(char):04x}")
        elif "\ud800" <= char <= "\udfff":
            # A lone surrogate cannot be UTF-8; Go writes the replacement character.
            out.append("\ufffd")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _float(value: float) -> str:
    """Go's float64 encoding: shortest digits, positional between 1e-6 and 1e21."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError("NaN and infinities have no JSON form")
    # Loaded here, not at the top: Vault's numbers arrive as JsonNumber, so floats are rare,
    # and decimal held from the start was 0.4 MiB of every node's idle RSS.
    from decimal import Decimal

    shortest = Decimal(repr(value)).normalize()
    magnitude = abs(value)
    if magnitude == 0 or 1e-6 <= magnitude < 1e21:
        return format(shortest, "f")
    sign, digits, exponent = shortest.as_tuple()
    assert isinstance(exponent, int)
    mantissa = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
    power = exponent + len(digits) - 1
    # Go pads exponents to two digits, then its JSON encoder drops the pad of
    # negative ones: 1e-07 becomes 1e-7, while 1e+21 stays.
    written = f"e+{power:02d}" if power >= 0 else f"e-{-power}"
    return ("-" if sign else "") + mantissa + written


def _encode(value: Any, out: list[str]) -> None:
    if isinstance(value, (JsonNumber, RawJson)):
        out.append(str.__str__(value))
    elif isinstance(value, str):
        out.append(_string(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(_float(value))
    elif isinstance(value, dict):
        out.append("{")
        # Go sorts map keys by their UTF-8 bytes, which is code point order.
        for index, key in enumerate(sorted(value)):
            if index:
                out.append(",")
            out.append(_string(str(key)))
            out.append(":")
            _encode(value[key], out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(value: Any) -> str:
    """Compact JSON with Go's key order and escaping."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out)


def dumps_fields(fields: list[tuple[str, Any]]) -> str:
    """A JSON object whose keys keep the given order, as Go writes a struct."""
    out = ["{"]
    for index, (key, value) in enumerate(fields):
        if index:
            out.append(",")
        out.append(_string(key))
        out.append(":")
        _encode(value, out)
    out.append("}")
    return "".join(out)
