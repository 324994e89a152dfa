"""Objects written from a template: checked and planned when parsed, rendered per Mount.

A template's `secret` calls become ordinary Vault requests when the objects are
parsed, so they share the Mount's dedupe and the kept-lease cache with plain objects
(a template and a plain object on one database role get one credential). Rendering
happens after every request has been answered, and only reads those answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from provider.errors import InvalidRequest, ProviderError, SecretNotFound, VaultUnavailable
from provider.render import templates
from provider.render.templates.errors import position
from provider.render.templates.nodes import Node
from provider.render.templates.reads import VaultRead, secret_calls
from provider.request.vault_request import VaultRequest, build_request

__all__ = ["ObjectTemplate", "parse_template", "render_template"]

# The evaluator's words for a key missing from a map: that is a secret without the key.
_MISSING_KEY = "map has no entry for key"


@dataclass(frozen=True)
class ObjectTemplate:
    """A parsed template and the request each of its distinct `secret`/`pkiCert` calls makes."""

    source: str = field(repr=False)
    tree: tuple[Node, ...] = field(repr=False)
    calls: tuple[tuple[VaultRead, VaultRequest], ...]

    @property
    def requests(self) -> tuple[VaultRequest, ...]:
        return tuple(dict.fromkeys(request for _, request in self.calls))


def parse_template(name: str, source: str, where: str, problems: list[str]) -> ObjectTemplate | None:
    """The template planned, or None with the problems recorded (each with line and column)."""
    try:
        tree = templates.parse(name, source)
        calls = secret_calls(name, source, tree)
    except templates.TemplateError as exc:
        problems.append(f"{where}: template line {exc.line}, column {exc.column}: {exc.problem}")
        return None
    planned: dict[VaultRead, VaultRequest] = {}
    for call in calls:
        read = call.read
        # As Vault Agent does: a write is a PUT with the arguments as its body, like secretArgs.
        method = "PUT" if read.write else "GET"
        body = dict(read.arguments) or None
        line, column = position(source, call.offset)
        at = f"{where}: template line {line}, column {column}"
        request = build_request(read.path, method, body, at, problems, field="the path")
        if request is None:
            return None
        planned.setdefault(read, request)
    return ObjectTemplate(source, tree, tuple(planned.items()))


def render_template(
    name: str,
    template: ObjectTemplate,
    payloads: Mapping[VaultRequest, Any],
    max_output: int,
) -> bytes:
    """The file's bytes: the template run over the answers to its requests.

    Raises SecretNotFound for a key the secret lacks, InvalidRequest for any other
    template error, each message naming the line and column.
    """
    requests = dict(template.calls)

    def fetch(read: VaultRead) -> dict[str, Any]:
        request = requests[read]
        payload = payloads[request]
        if not isinstance(payload, dict):
            raise VaultUnavailable(f"Vault answered {request.describe()} with an empty body")
        return payload

    limits = templates.Limits(max_output=max_output)
    try:
        text = templates.execute(name, template.source, template.tree, None, fetch, limits)
    except templates.TemplateError as exc:
        kind: type[ProviderError] = SecretNotFound if exc.problem.startswith(_MISSING_KEY) else InvalidRequest
        raise kind(f"template line {exc.line}, column {exc.column}: {exc.problem}") from None
    # Binary values (base64Decode of a keystore) travel through the engine as surrogates.
    return text.encode("utf-8", "surrogateescape")
