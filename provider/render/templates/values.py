"""Go's view of template values: how fmt prints them, their type names, and truth.

Values are what parsed JSON gives (dict, list, str, int, float, bool, None, and
`gojson.JsonNumber`, which Go knows as json.Number, a string type), plus `Secret`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

from provider.render.gojson import JsonNumber
from provider.render.templates.pki import PemEncoded

__all__ = ["PemEncoded", "Secret", "go_quote", "go_string", "is_true", "type_name"]


@dataclass(frozen=True, slots=True)
class Secret:
    """consul-template's dependency.Secret: the Vault response envelope with Go field names."""

    RequestID: str
    LeaseID: str
    LeaseDuration: Any
    Renewable: bool
    Data: Any
    Warnings: Any
    Auth: Any
    WrapInfo: Any

    @classmethod
    def from_response(cls, response: dict[str, Any]) -> Secret:
        return cls(
            RequestID=response.get("request_id") or "",
            LeaseID=response.get("lease_id") or "",
            LeaseDuration=response.get("lease_duration") or 0,
            Renewable=bool(response.get("renewable")),
            Data=response.get("data"),
            Warnings=response.get("warnings"),
            Auth=response.get("auth"),
            WrapInfo=response.get("wrap_info"),
        )

    def items(self) -> list[tuple[str, Any]]:
        return [(field.name, getattr(self, field.name)) for field in fields(self)]


def type_name(value: Any) -> str:
    """The Go type a value has after decoding JSON, for error messages."""
    if value is None:
        return "<nil>"
    if isinstance(value, JsonNumber):
        return "json.Number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    if isinstance(value, Secret):
        return "*dependency.Secret"
    if isinstance(value, PemEncoded):
        return "dependency.PemEncoded"
    return type(value).__name__


def is_true(value: Any) -> bool:
    """Go's template truth: false, 0, nil and empty strings, maps and lists are false."""
    if value is None or value is False:
        return False
    if isinstance(value, (str, dict, list, tuple, int, float)):
        return bool(value)
    return True


def _go_float(value: float) -> str:
    """Go's %v of a float64: shortest digits, exponent form below 1e-4 and from 1e6
    (`fmt.Println(1e6)` prints 1e+06; the 1e21 threshold is JSON's, not fmt's)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    power = exponent + len(text) - 1
    prefix = "-" if sign else ""
    if power < -4 or power >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    return prefix + format(Decimal(repr(abs(value))).normalize(), "f")


def go_string(value: Any) -> str:
    """`fmt.Sprint(value)`: what {{ value }} and %v print."""
    if value is None:
        return "<nil>"
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, dict):
        inner = " ".join(f"{go_string(key)}:{go_string(value[key])}" for key in sorted(value, key=str))
        return f"map[{inner}]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_string(item) for item in value) + "]"
    if isinstance(value, Secret):
        return "&{" + " ".join(go_string(item) for _, item in value.items()) + "}"
    if isinstance(value, PemEncoded):
        return "{" + " ".join((value.Cert, value.Key, value.CA)) + "}"
    return str(value)


_QUOTE_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def go_quote(text: str) -> str:
    """`strconv.Quote`: a double-quoted Go string literal."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[char])
        elif char == " " or (char.isprintable() and not char.isspace()):
            out.append(char)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)
