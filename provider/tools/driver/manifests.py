"""SecretProviderClass manifests read from YAML, as the driver sees them in the cluster.

Only what the driver uses to call a provider is kept: name, namespace,
`spec.provider` and `spec.parameters`. The CRD types parameters as
`map[string]string`, so the API server refuses anything else; so do we, naming the
key, instead of letting YAML turn `true` or `0600` into something the provider never gets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "API_GROUP",
    "OUR_PROVIDERS",
    "InvalidSecretProviderClass",
    "SecretProviderClass",
    "load_secret_provider_classes",
    "parse_secret_provider_classes",
]

API_GROUP = "secrets-store.csi.x-k8s.io"
KIND = "SecretProviderClass"
DEFAULT_NAMESPACE = "default"
# `spec.provider` values this provider serves: its own, and openbao-csi-provider's (-also-serve-as=openbao).
OUR_PROVIDERS = ("vault", "openbao")


class InvalidSecretProviderClass(ValueError):
    """A manifest that the API server would not accept as a SecretProviderClass."""


@dataclass(frozen=True)
class SecretProviderClass:
    """One SecretProviderClass: where it lives, which provider serves it, its parameters."""

    name: str
    namespace: str
    provider: str
    parameters: dict[str, str] = field(default_factory=dict)


def load_secret_provider_classes(path: str | os.PathLike[str]) -> list[SecretProviderClass]:
    """Read every SecretProviderClass in a (multi-document) YAML file; see parse_secret_provider_classes."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidSecretProviderClass(f"{source}: cannot read: {exc}") from exc
    return parse_secret_provider_classes(text, source=str(source))


def parse_secret_provider_classes(text: str, *, source: str = "<yaml>") -> list[SecretProviderClass]:
    """Parse YAML text into SecretProviderClasses, in document order.

    Documents of other kinds (a Pod or a ServiceAccount next to the class in one
    manifest) and empty documents are skipped. A file without any
    SecretProviderClass, or with a malformed one, raises InvalidSecretProviderClass
    naming `source`, the document number and the offending key.
    """
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise InvalidSecretProviderClass(f"{source}: not valid YAML{_yaml_problem(exc)}") from exc
    classes = []
    for index, document in enumerate(documents, start=1):
        where = f"{source}: document {index}"
        if document is None:
            continue
        if not isinstance(document, Mapping):
            raise InvalidSecretProviderClass(f"{where}: expected a mapping, got {type(document).__name__}")
        if document.get("kind") != KIND:
            continue
        classes.append(_parse_document(document, where))
    if not classes:
        raise InvalidSecretProviderClass(f"{source}: no document of kind {KIND}")
    return classes


def _yaml_problem(exc: yaml.YAMLError) -> str:
    # PyYAML's own text spans several lines and quotes the input; keep the position and the gist.
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f" at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    return f": {exc}"


def _parse_document(document: Mapping[Any, Any], where: str) -> SecretProviderClass:
    api_version = document.get("apiVersion")
    if not isinstance(api_version, str) or not api_version.startswith(API_GROUP + "/"):
        raise InvalidSecretProviderClass(f"{where}: apiVersion must be {API_GROUP}/v1, got {api_version!r}")
    metadata = _mapping(document.get("metadata"), f"{where}: metadata")
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidSecretProviderClass(f"{where}: metadata.name must be a non-empty string")
    where = f"{where} ({KIND} {name!r})"
    namespace = metadata.get("namespace", DEFAULT_NAMESPACE)
    if not isinstance(namespace, str) or not namespace:
        raise InvalidSecretProviderClass(f"{where}: metadata.namespace must be a non-empty string")
    spec = _mapping(document.get("spec"), f"{where}: spec")
    provider = spec.get("provider")
    if not isinstance(provider, str) or not provider:
        raise InvalidSecretProviderClass(f"{where}: spec.provider must be a non-empty string")
    raw_parameters = spec.get("parameters")
    parameters = {} if raw_parameters is None else _parameters(raw_parameters, where)
    return SecretProviderClass(name=name, namespace=namespace, provider=provider, parameters=parameters)


def _mapping(value: object, what: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise InvalidSecretProviderClass(f"{what} must be a mapping")
    return value


def _parameters(value: object, where: str) -> dict[str, str]:
    raw = _mapping(value, f"{where}: spec.parameters")
    parameters = {}
    for key, item in raw.items():
        if not isinstance(key, str):
            raise InvalidSecretProviderClass(f"{where}: spec.parameters key {key!r} must be a string")
        if not isinstance(item, str):
            # The usual cause: `objects:` written as a YAML list instead of a `|` block string,
            # or an unquoted true/false/number.
            raise InvalidSecretProviderClass(
                f"{where}: spec.parameters.{key} must be a string, got {_yaml_type(item)}; quote it, "
                "or write a nested document as a block string (`key: |`)"
            )
        parameters[key] = item
    return parameters


def _yaml_type(value: object) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "a mapping"}
    if value is None:
        return "null"
    return names.get(type(value), type(value).__name__)
