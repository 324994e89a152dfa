"""The functions a template may call, other than `secret`, `and` and `or` (see evaluator).

Each takes its arguments as Go would after the pipeline's value is appended last, and
raises `FunctionError` with a message that never contains an argument's value.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from provider.render.gojson import JsonNumber
from provider.render.templates import encoders
from provider.render.templates.values import go_quote, go_string, is_true, type_name

__all__ = ["FUNCTIONS", "FunctionError"]


class FunctionError(Exception):
    """A function refused its arguments; the evaluator adds the template position."""


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise FunctionError(f"wrong type for value; expected string; got {type_name(value)}")
    return str.__str__(value)


def _map(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FunctionError(
            f"wrong type for value; expected map[string]interface {{}}; got {type_name(value)}"
        )
    return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str) and not isinstance(value, JsonNumber):
        return "string"
    return type_name(value)


def _comparable(left: Any, right: Any) -> None:
    if _kind(left) != _kind(right):
        raise FunctionError(f"incompatible types for comparison: {type_name(left)} and {type_name(right)}")


def _eq(first: Any, *others: Any) -> bool:
    for other in others:
        if first is None or other is None:
            if first is other:
                return True
            continue
        _comparable(first, other)
        if first == other:
            return True
    return False


def _ordered(name: str, test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(left: Any, right: Any) -> bool:
        _comparable(left, right)
        if _kind(left) not in ("number", "string"):
            raise FunctionError(f"invalid type for comparison in {name}: {type_name(left)}")
        return test(left, right)

    return compare


def _len(value: Any) -> int:
    if isinstance(value, (str, dict, list, tuple)):
        return len(value.encode() if isinstance(value, str) else value)
    raise FunctionError(f"len of type {type_name(value)}")


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(item, dict):
            item = item.get(key)
        elif isinstance(item, (list, tuple)):
            if isinstance(key, bool) or not isinstance(key, int):
                raise FunctionError(f"cannot index slice/array with type {type_name(key)}")
            if not 0 <= key < len(item):
                raise FunctionError(f"index out of range: {key}")
            item = item[key]
        elif item is None:
            raise FunctionError("index of untyped nil")
        else:
            raise FunctionError(f"can't index item of type {type_name(item)}")
    return item


def _base64_decode(value: Any) -> str:
    text = _text(value).replace("\r", "").replace("\n", "")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FunctionError("illegal base64 data") from None
    # Bytes that are not UTF-8 survive as surrogates; encode the output with
    # "surrogateescape" to get them back.
    return data.decode("utf-8", "surrogateescape")


def _base64_encode(value: Any) -> str:
    return base64.b64encode(_text(value).encode("utf-8", "surrogateescape")).decode("ascii")


def _split(separator: Any, value: Any) -> list[str]:
    text = _text(value).strip()
    sep = _text(separator)
    if not text:
        return []
    return list(text) if sep == "" else text.split(sep)


def _join(separator: Any, items: Any) -> str:
    if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
        raise FunctionError(f"wrong type for value; expected []string; got {type_name(items)}")
    return _text(separator).join(items)


def _case(convert: Callable[[str], str]) -> Callable[[Any], str]:
    # Go maps one rune to one rune; Python's "ß".upper() would give "SS".
    return lambda value: "".join(
        mapped if len(mapped := convert(char)) == 1 else char for char in _text(value)
    )


def _contains(needle: Any, haystack: Any) -> bool:
    if isinstance(haystack, (list, tuple)):
        return any(_kind(item) == _kind(needle) and item == needle for item in haystack)
    if isinstance(haystack, str) and isinstance(needle, str) and _kind(needle) == _kind(haystack):
        return needle in haystack
    return False


def _verb(verb: str, value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_verb(verb, item) for item in value) + "]"
    if verb == "v":
        return go_string(value)
    if verb == "s" and isinstance(value, str):
        return str.__str__(value)
    if verb == "s" and isinstance(value, dict):
        return "map[" + " ".join(f"{_verb('s', k)}:{_verb('s', value[k])}" for k in sorted(value)) + "]"
    if verb == "d" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if verb == "q" and isinstance(value, str):
        return go_quote(value)
    if value is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({type_name(value)}={go_string(value)})"


def _printf(layout: Any, *args: Any) -> str:
    text = _text(layout)
    out: list[str] = []
    used = 0
    at = 0
    while at < len(text):
        char = text[at]
        if char != "%":
            out.append(char)
            at += 1
            continue
        if at + 1 >= len(text):
            out.append("%!(NOVERB)")
            break
        verb = text[at + 1]
        at += 2
        if verb == "%":
            out.append("%")
        elif used >= len(args):
            out.append(f"%!{verb}(MISSING)")
        else:
            out.append(_verb(verb, args[used]) if verb in "sdvq" else f"%!{verb}({type_name(args[used])})")
            used += 1
    if used < len(args):
        extra = ", ".join(f"{type_name(arg)}={go_string(arg)}" for arg in args[used:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


#: name -> (function, fewest arguments, most arguments or None for any number)
FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int | None]] = {
    "eq": (_eq, 2, None),
    "ne": (lambda left, right: not _eq(left, right), 2, 2),
    "lt": (_ordered("lt", lambda a, b: a < b), 2, 2),
    "le": (_ordered("le", lambda a, b: a <= b), 2, 2),
    "gt": (_ordered("gt", lambda a, b: a > b), 2, 2),
    "ge": (_ordered("ge", lambda a, b: a >= b), 2, 2),
    "not": (lambda value: not is_true(value), 1, 1),
    "len": (_len, 1, 1),
    "index": (_index, 1, None),
    "base64Decode": (_base64_decode, 1, 1),
    "base64Encode": (_base64_encode, 1, 1),
    "toJSON": (encoders.to_json, 1, 1),
    "toJSONPretty": (lambda value: encoders.to_json_pretty(_map(value)), 1, 1),
    "toYAML": (lambda value: encoders.to_yaml(_map(value)), 1, 1),
    "printf": (_printf, 1, None),
    "trimSpace": (lambda value: _text(value).strip(), 1, 1),
    "split": (_split, 2, 2),
    "join": (_join, 2, 2),
    "replaceAll": (lambda old, new, value: _text(value).replace(_text(old), _text(new)), 3, 3),
    "toLower": (_case(str.lower), 1, 1),
    "toUpper": (_case(str.upper), 1, 1),
    "contains": (_contains, 2, 2),
}
