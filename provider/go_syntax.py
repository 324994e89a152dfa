"""Values and flags written the way Go reads them. Pure.

The upstream provider is a Go program, and operators copy its flags and parameters:
`strconv.ParseBool` booleans, `strconv.ParseInt(s, 0, 64)` integers, unsigned
`time.ParseDuration` durations, and the `flag` package's syntax (`-flag`, `--flag`,
`-flag=value`, `-flag value`; booleans only as `-flag` or `-flag=false`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

__all__ = ["FlagError", "convert_flag_value", "parse_bool", "parse_duration", "parse_int", "scan_flags"]

_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
}  # fmt: skip
_GO_OCTAL = re.compile(r"[+-]?0[0-7]+")


class FlagError(ValueError):
    """A flag or environment variable has a value we cannot use."""


def parse_bool(text: str) -> bool | None:
    """Go's strconv.ParseBool: the forms operators already write for the Go provider."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def parse_duration(text: str) -> float | None:
    """Seconds of a Go duration such as 20s, 1m30s or 500ms (no sign); None if malformed."""
    if text == "0":
        return 0.0
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    return total if position == len(text) and text else None


def parse_int(text: str) -> int | None:
    """Go's strconv.ParseInt(text, 0, 64), as Go's flag package reads integers (0x10, 010, 1_000)."""
    try:
        return int(text, 8) if _GO_OCTAL.fullmatch(text) else int(text, 0)
    except ValueError:
        return None


def scan_flags(argv: Sequence[str], booleans: Mapping[str, bool]) -> list[tuple[str, str]]:
    """(name, value text) per flag in `argv`; `booleans` names every defined flag (True: a boolean).

    Stops at '--'; any other argument that is not a flag is an error, as are unknown
    flags. `-h` and `-help` raise FlagError("help requested").
    """
    found: list[tuple[str, str]] = []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--":
            break
        if not arg.startswith("-") or arg == "-":
            raise FlagError(f"unexpected argument {arg!r}")
        name, has_value, value = arg.lstrip("-").partition("=")
        if arg.startswith("---") or not name:
            raise FlagError(f"bad flag syntax: {arg}")
        if name in ("h", "help"):
            raise FlagError("help requested")
        if name not in booleans:
            raise FlagError(f"flag provided but not defined: -{name}")
        if not has_value:
            if booleans[name]:
                value = "true"
            elif args:
                value = args.pop(0)
            else:
                raise FlagError(f"flag needs an argument: -{name}")
        found.append((name, value))
    if args:
        raise FlagError(f"unexpected argument {args[0]!r}")
    return found


def convert_flag_value(kind: str, text: str, origin: str) -> object:
    """A flag's (or environment variable's) text as its kind: bool, int, duration (seconds), list or str.

    `origin` ("flag -x", "environment variable X") names it in the FlagError for a bad value.
    """
    if kind == "bool":
        parsed = parse_bool(text)
        if parsed is None:
            raise FlagError(f"invalid boolean value {text!r} for {origin}")
        return parsed
    if kind == "int":
        number = parse_int(text)
        if number is None:
            raise FlagError(f"invalid integer value {text!r} for {origin}")
        return number
    if kind == "list":
        return tuple(item.strip().rstrip("/") for item in text.split(",") if item.strip())
    if kind == "duration":
        seconds = parse_duration(text)
        if seconds is None:
            raise FlagError(f"invalid duration {text!r} for {origin} (use e.g. 20s or 1m)")
        return seconds
    return text
