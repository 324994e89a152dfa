"""Reading one field of an object: the scalar as written, a file mode, secretArgs, an encoding. Pure.

Each reader appends its problem (naming the object and the field) and returns a neutral
value, so every problem of a SecretProviderClass is reported at once.
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode

from provider.go_syntax import parse_bool
from provider.request import yamldoc

__all__ = [
    "ENCODINGS",
    "FIELDS",
    "MAX_FILE_MODE",
    "NULL_TEXTS",
    "read_encoding",
    "read_file_mode",
    "read_flag",
    "read_pointer",
    "read_secret_args",
    "read_text",
    "suggestion",
]

ENCODINGS = ("utf-8", "base64", "hex")
MAX_FILE_MODE = 0o777
FIELDS = (
    "objectName",
    "secretPath",
    "secretKey",
    "method",
    "secretArgs",
    "encoding",
    "filePermission",
    "format",
    "template",
    "optional",
    "secretKeyPointer",
)
NULL_TEXTS = ("", "~", "null", "Null", "NULL")
_BAD_POINTER_ESCAPE = re.compile(r"~(?![01])")


def read_encoding(items: dict[str, Node], where: str, problems: list[str]) -> str:
    encoding = (read_text(items.get("encoding"), where, "encoding", problems) or "utf-8").lower()
    if encoding not in ENCODINGS:
        problems.append(f"{where}: encoding {encoding!r} is not one of utf-8, base64, hex")
    return encoding


def read_flag(node: Node | None, where: str, key: str, problems: list[str]) -> bool:
    """A boolean field (`optional: true`); Go's strconv.ParseBool forms, absent is false."""
    text = read_text(node, where, key, problems)
    value = parse_bool(text) if text else False
    if value is None:
        problems.append(f"{where}: {key} {text!r} is not a boolean (use true or false)")
        return False
    return value


def read_pointer(node: Node | None, where: str, problems: list[str]) -> tuple[str, ...] | None:
    """`secretKeyPointer`, an RFC 6901 JSON Pointer into the secret (`/config/db/password`), as its keys."""
    text = read_text(node, where, "secretKeyPointer", problems)
    if not text:
        return None
    if not text.startswith("/") or text == "/":
        problems.append(
            f"{where}: secretKeyPointer {text!r} must be a JSON Pointer such as /config/db/password"
        )
        return None
    tokens = text[1:].split("/")
    if any(_BAD_POINTER_ESCAPE.search(token) for token in tokens):
        problems.append(f"{where}: secretKeyPointer {text!r} has a '~' not followed by 0 or 1")
        return None
    # RFC 6901: ~1 is '/', ~0 is '~', in that order.
    return tuple(token.replace("~1", "/").replace("~0", "~") for token in tokens)


def read_text(node: Node | None, where: str, key: str, problems: list[str]) -> str:
    """A string field: the scalar exactly as written (yaml.v3 puts `no` or `0600` verbatim)."""
    if node is None:
        return ""
    if not isinstance(node, ScalarNode):
        problems.append(f"{where}: {key} must be a single value, not a list or mapping")
        return ""
    if node.tag == yamldoc.PLAIN_TAG and node.value in NULL_TEXTS:
        return ""
    return str(node.value)


def suggestion(key: str) -> str:
    by_lower = {known.lower(): known for known in FIELDS}
    if key.lower() in by_lower:
        return f" (did you mean {by_lower[key.lower()]!r}? keys are case-sensitive)"
    close = difflib.get_close_matches(key, FIELDS, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(FIELDS)}"


def read_file_mode(node: Node | None, where: str, problems: list[str]) -> int | None:
    if node is None:
        return None
    if not isinstance(node, ScalarNode):
        problems.append(f"{where}: filePermission must be a number such as 0600, 0o600 or 384")
        return None
    if node.tag == yamldoc.PLAIN_TAG and node.value in NULL_TEXTS:
        return None
    # Quoted forms ("0600") are accepted too: they can only mean one thing.
    mode = yamldoc.plain_int(node.value.strip())
    if mode is None:
        problems.append(f"{where}: filePermission {node.value!r} is not a number such as 0600, 0o600 or 384")
        return None
    if not 0 <= mode <= MAX_FILE_MODE:
        problems.append(f"{where}: filePermission {node.value!r} is outside 0 to 0777")
        return None
    return mode


def read_secret_args(node: Node | None, where: str, problems: list[str]) -> dict[str, Any] | None:
    if node is None:
        return None
    if isinstance(node, ScalarNode) and node.tag == yamldoc.PLAIN_TAG and node.value in NULL_TEXTS:
        return None
    if not isinstance(node, MappingNode):
        problems.append(f"{where}: secretArgs must be a mapping of argument names to values")
        return None
    try:
        args = yamldoc.to_value(node)
    except yamldoc.YamlError as exc:
        problems.append(f"{where}: secretArgs: {exc}")
        return None
    bad = _non_finite_keys(args)
    if bad:
        problems.append(f"{where}: secretArgs {', '.join(bad)} must be finite numbers")
        return None
    return args  # type: ignore[no-any-return]


def _non_finite_keys(value: Any, where: str = "") -> list[str]:
    """Dotted names (`b.c`, `d.1`) of NaN or infinite numbers, which JSON cannot carry."""
    if isinstance(value, float) and not math.isfinite(value):
        return [where or "value"]
    if isinstance(value, dict):
        children = list(value.items())
    elif isinstance(value, list):
        children = [(str(index), item) for index, item in enumerate(value)]
    else:
        return []
    return [
        bad for key, item in children for bad in _non_finite_keys(item, f"{where}.{key}" if where else key)
    ]
