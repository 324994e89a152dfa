"""The `objects` parameter: a YAML list of what to fetch and where to put it.

Pure parsing and validation. Every problem is collected and reported at once,
each naming the object by index and name. Field meanings follow the upstream
provider; where upstream silently does something surprising (ignores a typo'd
key, sends any HTTP method, forgets `secretArgs` when deduplicating) we refuse
or fix it, as the README's SecretProviderClass reference documents. An object
with `template:` names its reads in the template (`object_templates` plans them);
request paths are built in `vault_requests` for both kinds.
"""

from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from provider.render import gojson
from provider.render.file_paths import path_conflicts, path_problem
from provider.request import yamldoc
from provider.request.template_plan import ObjectTemplate, parse_template
from provider.request.vault_request import VaultRequest, build_request

__all__ = ["ENCODINGS", "METHODS", "SecretObject", "VaultRequest", "parse_objects", "request_plan"]

METHODS = ("GET", "PUT", "POST")
# Distinct `objects` texts remembered: about one per SecretProviderClass on the node.
PARSE_CACHE_SIZE = 512
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
)
# Fields that name what to read; a template names its own reads.
_READ_FIELDS = ("secretPath", "secretKey", "method", "secretArgs", "format")
# What an object writes besides one key: the secret's data as JSON, or every key as a file.
FORMATS = ("data", "files")
_NULL_TEXTS = ("", "~", "null", "Null", "NULL")
_NO_SECRET_HINT = 'read one with {{ with secret "secret/data/app" }} ... {{ end }}'  # noqa: S105


@dataclass(frozen=True)
class SecretObject:
    """One file of the volume (or with format: files, a directory) and the Vault requests that fill it."""

    index: int
    name: str
    # One request, or for a template each distinct `secret` call's, in the order written.
    requests: tuple[VaultRequest, ...]
    secret_key: str | None
    encoding: str
    file_mode: int | None  # None: use the request's permission
    # "" (one key, or the envelope without secretKey), "data" or "files"; see FORMATS.
    format: str
    # Canonical JSON of the whole object configuration: the versions' HMAC input.
    fingerprint: str = field(repr=False)
    template: ObjectTemplate | None = None

    @property
    def request(self) -> VaultRequest:
        """The request of an object without a template (a template's first)."""
        return self.requests[0]

    def label(self) -> str:
        return f'objects[{self.index}] "{self.name}"'


def request_plan(
    objects: tuple[SecretObject, ...],
    resolve: Callable[[VaultRequest], VaultRequest] | None = None,
) -> tuple[list[tuple[VaultRequest, ...]], dict[VaultRequest, SecretObject]]:
    """What each object sends, and each distinct request (in order) with the first object sending it.

    `resolve` maps a template's requests to what is sent for them (Agent's KV v2 data paths).
    """
    sent = [
        tuple(map(resolve, obj.requests))
        if resolve is not None and obj.template is not None
        else obj.requests
        for obj in objects
    ]
    first: dict[VaultRequest, SecretObject] = {}
    for obj, requests in zip(objects, sent, strict=True):
        for request in requests:
            first.setdefault(request, obj)
    return sent, first


def parse_objects(text: str) -> tuple[tuple[SecretObject, ...], list[str]]:
    """Parse the `objects` YAML; returns the objects and every problem found.

    Every rotation poll of a volume sends the same text, and composing YAML is most
    of a Mount's own CPU time, so parses are remembered (the results are immutable).
    """
    objects, problems = _parse_cached(text)
    return objects, list(problems)


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def _parse_cached(text: str) -> tuple[tuple[SecretObject, ...], tuple[str, ...]]:
    objects, problems = _parse(text)
    return objects, tuple(problems)


def _parse(text: str) -> tuple[tuple[SecretObject, ...], list[str]]:
    try:
        document = yamldoc.compose(text)
    except yamldoc.YamlError as exc:
        return (), [f"objects is not valid YAML: {exc}"]
    if document is None or (isinstance(document, ScalarNode) and document.value in _NULL_TEXTS):
        return (), ["objects is empty: list at least one object with objectName and secretPath"]
    if not isinstance(document, SequenceNode):
        return (), ["objects must be a YAML list of objects (each starting with '- objectName: ...')"]
    if not document.value:
        return (), ["objects is empty: list at least one object with objectName and secretPath"]

    objects: list[SecretObject] = []
    problems: list[str] = []
    names: list[tuple[int, str]] = []
    for index, node in enumerate(document.value):
        parsed = _parse_object(index, node, problems, names)
        if parsed is not None:
            objects.append(parsed)
    problems.extend(_name_problems(names))
    return tuple(objects), problems


def _parse_object(
    index: int, node: Node, problems: list[str], names: list[tuple[int, str]]
) -> SecretObject | None:
    where = f"objects[{index}]"
    if not isinstance(node, MappingNode):
        problems.append(
            f"{where} must be a mapping with objectName and secretPath ({yamldoc.describe(node)})"
        )
        return None
    try:
        items = {key: value for key, _, value in yamldoc.mapping_items(node)}
    except yamldoc.YamlError as exc:
        problems.append(f"{where}: {exc}")
        return None

    name = _text(items.get("objectName"), where, "objectName", problems)
    if name:
        where = f'{where} "{name}"'
        names.append((index, name))
    before = len(problems)
    for key in items:
        if key not in FIELDS:
            problems.append(f"{where}: unknown key {key!r}{_suggestion(key)}")

    if not name:
        problems.append(f"{where}: objectName is required (it is the file name in the volume)")
    elif (problem := path_problem(name)) is not None:
        problems.append(f"{where}: objectName {problem}")

    if "template" in items:
        return _template_object(index, name, items, where, problems, before)
    secret_path = _text(items.get("secretPath"), where, "secretPath", problems)
    secret_key = _text(items.get("secretKey"), where, "secretKey", problems) or None
    method = (_text(items.get("method"), where, "method", problems) or "GET").upper()
    if method not in METHODS:
        problems.append(f"{where}: method {method!r} is not allowed; use GET to read, PUT or POST to issue")
    encoding = _encoding(items, where, problems)
    file_mode = _file_mode(items.get("filePermission"), where, problems)
    output = _text(items.get("format"), where, "format", problems)
    if output and output not in FORMATS:
        problems.append(
            f"{where}: format {output!r} is not data (the secret as JSON) or files (a file per key)"
        )
    elif output and secret_key:
        problems.append(f"{where}: format {output} writes the whole secret; remove secretKey or format")
    args = _secret_args(items.get("secretArgs"), where, problems)
    request = build_request(secret_path, method, args, where, problems)
    if len(problems) > before or request is None:
        return None

    fingerprint = gojson.dumps(
        {
            "objectName": name,
            "secretPath": secret_path,
            "secretKey": secret_key or "",
            "method": method,
            "secretArgs": args,
            "encoding": encoding,
            "filePermission": file_mode or 0,
            # Only when set, so versions of objects without it stay what they were.
            **({"format": output} if output else {}),
        }
    )
    return SecretObject(index, name, (request,), secret_key, encoding, file_mode or None, output, fingerprint)


def _template_object(
    index: int, name: str, items: dict[str, Node], where: str, problems: list[str], before: int
) -> SecretObject | None:
    conflicting = [key for key in _READ_FIELDS if key in items]
    if conflicting:
        problems.append(f"{where}: a template names its own reads; remove {', '.join(conflicting)}")
    encoding = _encoding(items, where, problems)
    file_mode = _file_mode(items.get("filePermission"), where, problems)
    source = _text(items.get("template"), where, "template", problems)
    template = None
    if source:
        template = parse_template(name, source, where, problems)
    elif "template" in items and isinstance(items["template"], ScalarNode):
        problems.append(f"{where}: template is empty")
    if template is not None and not template.requests:
        problems.append(f"{where}: template reads no secret; {_NO_SECRET_HINT}")
    if len(problems) > before or template is None:
        return None
    fingerprint = gojson.dumps(
        {"objectName": name, "template": source, "encoding": encoding, "filePermission": file_mode or 0}
    )
    return SecretObject(
        index, name, template.requests, None, encoding, file_mode or None, "", fingerprint, template
    )


def _encoding(items: dict[str, Node], where: str, problems: list[str]) -> str:
    encoding = (_text(items.get("encoding"), where, "encoding", problems) or "utf-8").lower()
    if encoding not in ENCODINGS:
        problems.append(f"{where}: encoding {encoding!r} is not one of utf-8, base64, hex")
    return encoding


def _text(node: Node | None, where: str, key: str, problems: list[str]) -> str:
    """A string field: the scalar exactly as written (yaml.v3 puts `no` or `0600` verbatim)."""
    if node is None:
        return ""
    if not isinstance(node, ScalarNode):
        problems.append(f"{where}: {key} must be a single value, not a list or mapping")
        return ""
    if node.tag == yamldoc.PLAIN_TAG and node.value in _NULL_TEXTS:
        return ""
    return str(node.value)


def _suggestion(key: str) -> str:
    by_lower = {known.lower(): known for known in FIELDS}
    if key.lower() in by_lower:
        return f" (did you mean {by_lower[key.lower()]!r}? keys are case-sensitive)"
    close = difflib.get_close_matches(key, FIELDS, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(FIELDS)}"


def _file_mode(node: Node | None, where: str, problems: list[str]) -> int | None:
    if node is None:
        return None
    if not isinstance(node, ScalarNode):
        problems.append(f"{where}: filePermission must be a number such as 0600, 0o600 or 384")
        return None
    if node.tag == yamldoc.PLAIN_TAG and node.value in _NULL_TEXTS:
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


def _secret_args(node: Node | None, where: str, problems: list[str]) -> dict[str, Any] | None:
    if node is None:
        return None
    if isinstance(node, ScalarNode) and node.tag == yamldoc.PLAIN_TAG and node.value in _NULL_TEXTS:
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


def _name_problems(names: list[tuple[int, str]]) -> list[str]:
    problems = []
    by_name: dict[str, list[int]] = {}
    for index, name in names:
        by_name.setdefault(name, []).append(index)
    for name, indexes in by_name.items():
        if len(indexes) > 1:
            places = ", ".join(f"objects[{index}]" for index in indexes)
            problems.append(f'objectName "{name}" is used by {places}; each object needs its own file name')
    for parent, nested in path_conflicts(by_name):
        problems.append(f'objectName "{parent}" is a file, so "{nested}" cannot be a file inside it')
    return problems
