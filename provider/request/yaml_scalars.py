"""Plain YAML scalars typed as Go's gopkg.in/yaml.v3 types them: integers, floats, timestamps. Pure.

yaml.v3 reads `0600` and `0o600` as octal, `no` as a string and only true/false as
booleans; timestamps keep the text Go's time.Time writes in JSON. `yamldoc` applies
these rules to the nodes PyYAML composes.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any

__all__ = ["go_timestamp", "plain_int", "plain_scalar"]

_FLOAT_RE = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})"
    r"(?:([Tt ])([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})?)?"
)
_PREFIX_BASES = {"x": 16, "o": 8, "b": 2}
_BASE_DIGITS = {16: "0123456789abcdefABCDEF", 10: "0123456789", 8: "01234567", 2: "01"}
_SPECIAL_FLOATS = {
    ".nan": math.nan,
    ".NaN": math.nan,
    ".NAN": math.nan,
    **{
        f"{sign}{text}": (-math.inf if sign == "-" else math.inf)
        for sign in ("", "+", "-")
        for text in (".inf", ".Inf", ".INF")
    },
}
_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1


def plain_int(text: str) -> int | None:
    """An integer as yaml.v3 reads a plain scalar: '_' dropped, then Go's ParseInt(text, 0, 64).

    Decimal, 0x hex, 0o and leading-zero octal, 0b binary, with an optional sign; plus
    yaml.v3's own retries, which accept a sign after a bare 0b or 0o prefix (0b-1 is -1).
    Only ASCII digits count.
    """
    rest = text.replace("_", "")
    sign = inner_sign = ""
    if rest[:1] in ("+", "-") and rest:
        sign, rest = rest[0], rest[1:]
    if rest[:2].lower() in ("0x", "0o", "0b"):
        base = _PREFIX_BASES[rest[1].lower()]
        rest = rest[2:]
        if not sign and base != 16 and rest[:1] in ("+", "-") and rest:
            inner_sign, rest = rest[0], rest[1:]
    elif len(rest) > 1 and rest.startswith("0"):
        base, rest = 8, rest[1:]
    else:
        base = 10
    if not rest or any(char not in _BASE_DIGITS[base] for char in rest):
        return None
    value = int(rest, base)
    if "-" in (sign, inner_sign):
        value = -value
    return value if _INT64_MIN <= value <= _UINT64_MAX else None


def go_timestamp(text: str) -> str | None:
    """A yaml.v3 timestamp as Go's time.Time writes it in JSON (RFC 3339, nanoseconds trimmed).

    The forms yaml.v3 accepts: 2006-1-2, 2006-1-2 15:4:5.999999999 (UTC), and
    2006-1-2T15:4:5.999999999 with Z or ±hh:mm; anything else is not a timestamp.
    """
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    year, month, day, separator, hour, minute, second, fraction, zone = match.groups()
    if (separator in ("T", "t") and zone is None) or (separator == " " and zone is not None):
        return None
    try:
        moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        return None
    digits = (fraction or "").rstrip("0")
    if not zone or zone in ("Z", "+00:00", "-00:00"):
        zone = "Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{digits}" if digits else "") + zone


def plain_scalar(text: str) -> Any:
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    if text[:1] in "+-.0123456789":
        stamp = go_timestamp(text)
        if stamp is not None:
            return stamp
        number = plain_int(text)
        if number is not None:
            return number
        if _FLOAT_RE.fullmatch(text.replace("_", "")):
            return float(text.replace("_", ""))
    return text
