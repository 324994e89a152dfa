"""Objects written from a template: checked and planned when the objects are parsed. Pure.

A template's `secret` calls become ordinary Vault requests here, so they share the
Mount's dedupe and the kept-lease cache with plain objects (a template and a plain
object on one database role get one credential). Rendering happens per Mount, after
every request has been answered, and only reads those answers (`mount.object_files`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provider.render import templates
from provider.render.templates.errors import position
from provider.render.templates.nodes import Node
from provider.render.templates.reads import SecretCall, secret_calls
from provider.request.vault_request import VaultRequest, build_request

__all__ = ["ObjectTemplate", "parse_template"]


@dataclass(frozen=True)
class ObjectTemplate:
    """A parsed template and the request each of its distinct `secret`/`pkiCert` calls makes."""

    source: str = field(repr=False)
    tree: tuple[Node, ...] = field(repr=False)
    calls: tuple[tuple[SecretCall, VaultRequest], ...]

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
    planned: dict[SecretCall, VaultRequest] = {}
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
