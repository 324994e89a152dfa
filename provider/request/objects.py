"""The `objects` parameter: a YAML list of what to fetch and where to put it.

Pure parsing and validation. Every problem is collected and reported at once,
each naming the object by index and name. Field meanings follow the upstream
provider; where upstream silently does something surprising (ignores a typo'd
key, sends any HTTP method, forgets `secretArgs` when deduplicating) we refuse
or fix it, as the README's SecretProviderClass reference documents. An object
with `template:` names its reads in the template (`template_plan` plans them);
request paths are built in `vault_request` for both kinds, single fields read in
`object_fields`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from provider.render import gojson
from provider.render.file_paths import path_conflicts, path_problem
from provider.request import yamldoc
from provider.request.object_fields import (
    ENCODINGS,
    FIELDS,
    NULL_TEXTS,
    read_encoding,
    read_file_mode,
    read_flag,
    read_pointer,
    read_secret_args,
    read_text,
    suggestion,
)
from provider.request.template_plan import ObjectTemplate, parse_template
from provider.request.vault_request import VaultRequest, build_request

__all__ = ["ENCODINGS", "METHODS", "SecretObject", "VaultRequest", "parse_objects"]

METHODS = ("GET", "PUT", "POST")
# Distinct `objects` texts remembered: about one per SecretProviderClass on the node.
PARSE_CACHE_SIZE = 512
# Fields that name what to read; a template names its own reads.
_READ_FIELDS = ("secretPath", "secretKey", "method", "secretArgs", "format", "secretKeyPointer")
# What an object writes besides one key: the secret's data as JSON, or every key as a file.
FORMATS = ("data", "files")
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
    # A 404 from Vault means no file (and the version "absent") instead of a failed Mount.
    optional: bool = False
    # secretKeyPointer's keys: a value below the top level of the secret (None: secretKey, or whole).
    key_pointer: tuple[str, ...] | None = None

    @property
    def request(self) -> VaultRequest:
        """The request of an object without a template (a template's first)."""
        return self.requests[0]

    def label(self) -> str:
        return f'objects[{self.index}] "{self.name}"'


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
    if document is None or (isinstance(document, ScalarNode) and document.value in NULL_TEXTS):
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

    name = read_text(items.get("objectName"), where, "objectName", problems)
    if name:
        where = f'{where} "{name}"'
        names.append((index, name))
    before = len(problems)
    for key in items:
        if key not in FIELDS:
            problems.append(f"{where}: unknown key {key!r}{suggestion(key)}")

    if not name:
        problems.append(f"{where}: objectName is required (it is the file name in the volume)")
    elif (problem := path_problem(name)) is not None:
        problems.append(f"{where}: objectName {problem}")

    optional = read_flag(items.get("optional"), where, "optional", problems)
    if "template" in items:
        parsed = _template_object(index, name, items, where, problems, before)
    else:
        parsed = _plain_object(index, name, items, where, problems, before)
    return replace(parsed, optional=optional) if parsed is not None and optional else parsed


def _plain_object(
    index: int, name: str, items: dict[str, Node], where: str, problems: list[str], before: int
) -> SecretObject | None:
    """An object naming one request (secretPath, method, secretArgs); `before` counts earlier problems."""
    secret_path = read_text(items.get("secretPath"), where, "secretPath", problems)
    secret_key = read_text(items.get("secretKey"), where, "secretKey", problems) or None
    method = (read_text(items.get("method"), where, "method", problems) or "GET").upper()
    if method not in METHODS:
        problems.append(f"{where}: method {method!r} is not allowed; use GET to read, PUT or POST to issue")
    encoding = read_encoding(items, where, problems)
    file_mode = read_file_mode(items.get("filePermission"), where, problems)
    output = read_text(items.get("format"), where, "format", problems)
    if output and output not in FORMATS:
        problems.append(
            f"{where}: format {output!r} is not data (the secret as JSON) or files (a file per key)"
        )
    elif output and secret_key:
        problems.append(f"{where}: format {output} writes the whole secret; remove secretKey or format")
    pointer = read_pointer(items.get("secretKeyPointer"), where, problems)
    if pointer is not None and (secret_key or output):
        problems.append(
            f"{where}: secretKeyPointer selects one value; remove {'secretKey' if secret_key else 'format'}"
        )
    args = read_secret_args(items.get("secretArgs"), where, problems)
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
            **({"secretKeyPointer": list(pointer)} if pointer is not None else {}),
        }
    )
    return SecretObject(
        index,
        name,
        (request,),
        secret_key,
        encoding,
        file_mode or None,
        output,
        fingerprint,
        key_pointer=pointer,
    )


def _template_object(
    index: int, name: str, items: dict[str, Node], where: str, problems: list[str], before: int
) -> SecretObject | None:
    conflicting = [key for key in _READ_FIELDS if key in items]
    if conflicting:
        problems.append(f"{where}: a template names its own reads; remove {', '.join(conflicting)}")
    encoding = read_encoding(items, where, problems)
    file_mode = read_file_mode(items.get("filePermission"), where, problems)
    source = read_text(items.get("template"), where, "template", problems)
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
