"""JSON text the way Go's encoding/json writes it.

Upstream writes non-string secret values and whole responses with Go's json.Marshal,
and the driver builds `attributes` with it too. Byte-identical files and attributes
need the same rules: map keys sorted, no spaces, `<`, `>`, `&`, U+2028 and U+2029
escaped, and numbers written exactly as the source sent them. Numbers are carried
as `JsonNumber` (the original text) from `loads` to `dumps` for that last rule.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["JsonNumber", "RawJson", "dumps", "dumps_fields", "loads"]


class JsonNumber(str):
    """A JSON number kept as the text Vault sent (Go decodes with UseNumber)."""

    __slots__ = ()


class RawJson(str):
    """Already-encoded JSON text, written as it is (a nested struct's own field order)."""

    __slots__ = ()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(data: bytes | str) -> Any:
    """Parse JSON, keeping numbers as `JsonNumber`; invalid UTF-8 becomes U+FFFD as in Go."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    return json.loads(
        text,
        parse_int=JsonNumber,
        parse_float=JsonNumber,
        parse_constant=_reject_constant,
    )


_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
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
    if math.isnan(value) or math.isinf(value):
        raise ValueError("NaN and infinities have no JSON form")
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    # Go writes exponents as e-07 -> e-07 and e+21 -> e+21; Python agrees except for
    # the missing '+' sign and zero padding handled here.
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else "+"
        digits = exponent.lstrip("+-").rjust(2, "0")
        text = f"{mantissa}e{sign}{digits}"
    return text


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
