"""YAML as the upstream provider reads it (Go's gopkg.in/yaml.v3), with positions for errors.

PyYAML follows YAML 1.1: it turns `no` into False, `0o600` into a string, and
silently keeps the last of two equal keys. The upstream provider decodes `objects`
with yaml.v3, where only true/false are booleans, `0600` and `0o600` are both octal
integers, timestamps stay strings, and a duplicated key is an error. We compose the
document into PyYAML nodes (no type resolution), then resolve plain scalars here
with yaml.v3's rules, so an SPC means the same to us as to upstream.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from provider.request.yaml_scalars import go_timestamp, plain_int, plain_scalar

__all__ = ["PLAIN_TAG", "YamlError", "compose", "describe", "mapping_items", "plain_int", "to_value"]

# Tag given to unquoted, untagged scalars; their type is decided later by yaml.v3 rules.
PLAIN_TAG = "tag:vault-csi-provider,plain"
_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"

# Aliases let a tiny document expand into a huge one; no SPC needs more than this.
MAX_NODES = 10_000

_AMBIGUOUS_BREAKS = ("\x85", "\u2028", "\u2029")
_SURROGATE = re.compile("[\ud800-\udfff]")


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
    for char in _AMBIGUOUS_BREAKS:
        if char in text:
            # YAML 1.1 (PyYAML) reads these as line breaks, YAML 1.2 (Go's yaml.v3) as text.
            raise YamlError(
                f"contains U+{ord(char):04X} at offset {text.index(char)}, which YAML 1.1 and 1.2 read "
                "differently; write it as an escape in a double-quoted string"
            )
    loader: _Loader | None = None
    try:
        # The reader already checks characters while it is built: inside the try.
        loader = _Loader(text)
        try:
            node: Node | None = loader.get_single_node()
        except RecursionError:
            raise YamlError("the document is nested too deeply") from None
        if node is not None:
            _repair_surrogates(node)
        return node
    except yaml.MarkedYAMLError as exc:
        # PyYAML's own text quotes the offending line, which may hold a secret
        # argument; keep only the problem and the position.
        where = exc.problem_mark
        position = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise YamlError(f"{exc.problem or exc.context or 'invalid YAML'}{position}") from None
    except yaml.reader.ReaderError as exc:
        code = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or "\0")
        raise YamlError(
            f"contains a character YAML does not allow (U+{code:04X}) at offset {exc.position}"
        ) from None
    except yaml.YAMLError as exc:
        raise YamlError(type(exc).__name__) from None
    finally:
        if loader is not None:
            loader.dispose()


def _repair_surrogates(root: Node) -> None:
    """Join "\\ud83d\\ude00"-style escapes into one character, as Go does; a lone half becomes U+FFFD.

    PyYAML decodes each \\u escape on its own, which leaves surrogates that are not
    text at all (they cannot even be written as UTF-8).
    """
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ScalarNode):
            if not node.value.isascii() and _SURROGATE.search(node.value):
                joined = node.value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
                node.value = _SURROGATE.sub("\ufffd", joined)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, MappingNode):
            stack.extend(item for pair in node.value for item in pair)


def _is_merge_key(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag in (PLAIN_TAG, _MERGE) and node.value == "<<"


def _merge_sources(value: Node) -> list[MappingNode]:
    sources = value.value if isinstance(value, SequenceNode) else [value]
    if not all(isinstance(source, MappingNode) for source in sources):
        raise YamlError(f"a merge key (<<) at {describe(value)} must refer to a mapping or a list of them")
    return sources  # type: ignore[return-value]


def mapping_items(node: MappingNode) -> list[tuple[str, Node, Node]]:
    """(key text, key node, value node) of a mapping, with `<<` merge keys applied as yaml.v3 does.

    Keys written in the mapping win over merged ones; among merged mappings the first
    wins. A key written twice, or a key that is not a scalar, is an error.
    """
    seen: dict[str, Node] = {}
    items: list[tuple[str, Node, Node]] = []
    merges: list[MappingNode] = []
    for key_node, value_node in node.value:
        if _is_merge_key(key_node):
            merges.extend(_merge_sources(value_node))
            continue
        if not isinstance(key_node, ScalarNode):
            raise YamlError(f"a mapping key at {describe(key_node)} is not a plain value")
        key = key_node.value
        if key in seen:
            raise YamlError(f'key "{key}" appears twice ({describe(seen[key])} and {describe(key_node)})')
        seen[key] = key_node
        items.append((key, key_node, value_node))
    for source in merges:
        for key, key_node, value_node in mapping_items(source):
            if key not in seen:
                seen[key] = key_node
                items.append((key, key_node, value_node))
    return items


def _tagged_scalar(node: ScalarNode) -> Any:
    if node.tag == PLAIN_TAG:
        return plain_scalar(node.value)
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
        resolved = plain_scalar(node.value)
        if not isinstance(resolved, bool):
            raise YamlError(f'"!!bool" value at {describe(node)} is not true or false')
        return resolved
    if node.tag == _NULL:
        return None
    if node.tag == _TIMESTAMP_TAG:
        stamp = go_timestamp(node.value)
        if stamp is None:
            raise YamlError(f'"!!timestamp" value at {describe(node)} is not a timestamp')
        return stamp
    return node.value


def to_value(node: Node) -> Any:
    """Plain Python data (dict, list, str, int, float, bool, None) with yaml.v3's typing.

    Timestamps become the text Go's time.Time writes in JSON, as upstream sends them.
    """
    budget = [MAX_NODES]
    open_nodes: set[int] = set()

    def convert(current: Node) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise YamlError(f"the document expands to more than {MAX_NODES} values (aliases?)")
        if isinstance(current, ScalarNode):
            return _tagged_scalar(current)
        if id(current) in open_nodes:
            raise YamlError(f"an alias at {describe(current)} refers to a node that contains it")
        open_nodes.add(id(current))
        try:
            if isinstance(current, SequenceNode):
                return [convert(item) for item in current.value]
            if isinstance(current, MappingNode):
                return {key: convert(value) for key, _, value in mapping_items(current)}
        finally:
            open_nodes.discard(id(current))
        raise YamlError(f"unsupported YAML node at {describe(current)}")

    try:
        return convert(node)
    except RecursionError:
        raise YamlError("the document is nested too deeply") from None
