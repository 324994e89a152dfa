"""Vault Agent (consul-template) style templates, rendered without touching files or processes.

    lexer → parser → evaluator, with functions/encoders/values as leaves and errors at the bottom.

`render(name, source, fetch)` parses and runs a template; `secret` and `pkiCert` call `fetch(read)`.
`parse` and `execute` split the two, so a caller can check a template once and run it often.
"""

from __future__ import annotations

from typing import Any

from provider.render.templates.errors import TemplateError
from provider.render.templates.evaluator import Fetch, Limits, execute
from provider.render.templates.functions import FUNCTIONS
from provider.render.templates.nodes import Node
from provider.render.templates.parser import parse as _parse
from provider.render.templates.reads import VAULT_FUNCTIONS, SecretCall
from provider.render.templates.values import PemEncoded, Secret

__all__ = [
    "FUNCTION_NAMES",
    "Fetch",
    "Limits",
    "PemEncoded",
    "Secret",
    "SecretCall",
    "TemplateError",
    "execute",
    "parse",
    "render",
]

FUNCTION_NAMES = frozenset(FUNCTIONS) | {*VAULT_FUNCTIONS, "and", "or"}


def parse(name: str, source: str) -> tuple[Node, ...]:
    """Checks a template without running it (raises TemplateError)."""
    return _parse(name, source, FUNCTION_NAMES)


def render(name: str, source: str, fetch: Fetch, data: Any = None, limits: Limits | None = None) -> str:
    """The rendered text; each distinct `secret` call is fetched once per render."""
    return execute(name, source, parse(name, source), data, fetch, limits or Limits())
