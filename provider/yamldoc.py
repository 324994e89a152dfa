"""YAML as the upstream provider reads it (Go's gopkg.in/yaml.v3), with positions for errors.

PyYAML follows YAML 1.1: it turns `no` into False, `0o600` into a string, and
silently keeps the last of two equal keys. The upstream provider decodes `objects`
with yaml.v3, where only true/false are booleans, `0600` and `0o600` are both octal
integers, timestamps stay strings, and a duplicated key is an error. We compose the
document into PyYAML nodes (no type resolution), then resolve plain scalars here
with yaml.v3's rules, so an SPC means the same to us as to upstream.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["PLAIN_TAG", "YamlError", "compose", "describe", "mapping_items", "plain_int", "to_value"]

# Tag given to unquoted, untagged scalars; their type is decided later by yaml.v3 rules.
PLAIN_TAG = "tag:vault-csi-provider,plain"
_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"

# Aliases let a tiny document expand into a huge one; no SPC needs more than this.
MAX_NODES = 10_000

_FLOAT_RE = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
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


class YamlError(ValueError):
    """The text is not YAML we accept; the message names the line and column."""


class _Resolver(yaml.resolver.BaseResolver):
    def resolve(self, kind: type[Node], value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode and implicit[0]:
            return PLAIN_TAG
        return str(super().resolve(kind, value, implicit))  # type: ignore[no-untyped-call]


class _Loader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    _Resolver,
):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _Resolver.__init__(self)


def describe(node: Node) -> str:
    """'line L, column C' of a node, 1-based, for error messages."""
    mark = node.start_mark
    return f"line {mark.line + 1}, column {mark.column + 1}"


def compose(text: str) -> Node | None:
    """Parse one YAML document into nodes; None when the document is empty."""
    loader = _Loader(text)
    try:
        node: Node | None = loader.get_single_node()
        return node
    except yaml.MarkedYAMLError as exc:
        # PyYAML's own text quotes the offending line, which may hold a secret
        # argument; keep only the problem and the position.
        where = exc.problem_mark
        position = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise YamlError(f"{exc.problem or exc.context or 'invalid YAML'}{position}") from None
    except yaml.YAMLError as exc:
        raise YamlError(type(exc).__name__) from None
    finally:
        loader.dispose()


def mapping_items(node: MappingNode) -> list[tuple[str, Node, Node]]:
    """(key text, key node, value node) of a mapping; duplicate or complex keys are errors."""
    seen: dict[str, Node] = {}
    items: list[tuple[str, Node, Node]] = []
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode):
            raise YamlError(f"a mapping key at {describe(key_node)} is not a plain value")
        key = key_node.value
        if key in seen:
            raise YamlError(f'key "{key}" appears twice ({describe(seen[key])} and {describe(key_node)})')
        seen[key] = key_node
        items.append((key, key_node, value_node))
    return items


def plain_int(text: str) -> int | None:
    """An integer the way Go's strconv.ParseInt(text, 0, 64) reads it after yaml.v3 drops '_'.

    Decimal, 0x hex, 0o and leading-zero octal, 0b binary, with an optional sign.
    """
    digits = text.replace("_", "")
    sign = 1
    if digits[:1] in ("+", "-"):
        sign = -1 if digits[0] == "-" else 1
        digits = digits[1:]
    if not digits:
        return None
    lowered = digits.lower()
    try:
        if lowered.startswith("0x"):
            value = int(lowered[2:], 16)
        elif lowered.startswith("0o"):
            value = int(lowered[2:], 8)
        elif lowered.startswith("0b"):
            value = int(lowered[2:], 2)
        elif len(lowered) > 1 and lowered.startswith("0"):
            value = int(lowered[1:], 8)
        else:
            if not lowered.isdigit():
                return None
            value = int(lowered, 10)
    except ValueError:
        return None
    value *= sign
    return value if _INT64_MIN <= value <= _UINT64_MAX else None


def _plain_scalar(text: str) -> Any:
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    if text[:1] in "+-.0123456789":
        number = plain_int(text)
        if number is not None:
            return number
        if _FLOAT_RE.match(text.replace("_", "")):
            return float(text.replace("_", ""))
    return text


def _tagged_scalar(node: ScalarNode) -> Any:
    if node.tag == PLAIN_TAG:
        return _plain_scalar(node.value)
    if node.tag == _INT:
        number = plain_int(node.value)
        if number is None:
            raise YamlError(f'"!!int" value at {describe(node)} is not an integer')
        return number
    if node.tag == _FLOAT:
        try:
            return float(node.value)
        except ValueError:
            raise YamlError(f'"!!float" value at {describe(node)} is not a number') from None
    if node.tag == _BOOL:
        resolved = _plain_scalar(node.value)
        if not isinstance(resolved, bool):
            raise YamlError(f'"!!bool" value at {describe(node)} is not true or false')
        return resolved
    if node.tag == _NULL:
        return None
    return node.value


def to_value(node: Node) -> Any:
    """Plain Python data (dict, list, str, int, float, bool, None) with yaml.v3's typing."""
    budget = [MAX_NODES]

    def convert(current: Node) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise YamlError(f"the document expands to more than {MAX_NODES} values (aliases?)")
        if isinstance(current, ScalarNode):
            return _tagged_scalar(current)
        if isinstance(current, SequenceNode):
            return [convert(item) for item in current.value]
        if isinstance(current, MappingNode):
            return {key: convert(value) for key, _, value in mapping_items(current)}
        raise YamlError(f"unsupported YAML node at {describe(current)}")

    return convert(node)
