"""toJSON, toJSONPretty and toYAML, written the way consul-template's Go code writes them.

toJSON is `json.Marshal`, toJSONPretty `json.MarshalIndent(m, "", "  ")` and toYAML
gopkg.in/yaml.v2's `Marshal`, each with surrounding whitespace trimmed.
"""

from __future__ import annotations

from typing import Any

import yaml

from provider.render import gojson
from provider.render.gojson import JsonNumber
from provider.render.templates.values import Secret

__all__ = ["to_json", "to_json_pretty", "to_yaml"]


def _plain(value: Any) -> Any:
    if isinstance(value, Secret):
        return gojson.RawJson(gojson.dumps_fields([(key, _plain(item)) for key, item in value.items()]))
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def to_json(value: Any) -> str:
    return gojson.dumps(_plain(value))


def _pretty(value: Any, indent: str) -> str:
    inner = indent + "  "
    if isinstance(value, dict) and value:
        members = [f"{inner}{gojson.dumps(str(key))}: {_pretty(value[key], inner)}" for key in sorted(value)]
        return "{\n" + ",\n".join(members) + "\n" + indent + "}"
    if isinstance(value, (list, tuple)) and value:
        items = [inner + _pretty(item, inner) for item in value]
        return "[\n" + ",\n".join(items) + "\n" + indent + "]"
    return gojson.dumps(value)


def to_json_pretty(value: dict[str, Any]) -> str:
    return _pretty(_plain(value), "")


class _GoYamlDumper(yaml.SafeDumper):
    """PyYAML set up to choose yaml.v2's scalar styles."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    text = str.__str__(value)
    tag = "tag:yaml.org,2002:str"
    if "\n" in text:
        # yaml.v2 writes strings with newlines as literal blocks (PyYAML falls back to
        # quoting when a literal block cannot hold the text).
        return dumper.represent_scalar(tag, text, style="|")
    resolved: str = dumper.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    if resolved != tag:
        # Text that would read back as another type ("true", "5432", "") is double-quoted.
        return dumper.represent_scalar(tag, text, style='"')
    return dumper.represent_scalar(tag, text)


_GoYamlDumper.add_representer(str, _represent_str)
_GoYamlDumper.add_representer(JsonNumber, _represent_str)


def to_yaml(value: dict[str, Any]) -> str:
    plain = _yaml_plain(value)
    text: str = yaml.dump(
        plain, Dumper=_GoYamlDumper, default_flow_style=False, sort_keys=True, allow_unicode=True
    )
    return text.strip()


def _yaml_plain(value: Any) -> Any:
    if isinstance(value, Secret):
        return {key: _yaml_plain(item) for key, item in value.items()}
    if isinstance(value, dict):
        return {str(key): _yaml_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_yaml_plain(item) for item in value]
    return value
