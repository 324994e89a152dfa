"""The engine's entry points: parse a template, execute a parsed one, or both (`render`).

The package's `__init__` hands these out, loading this module (and with it the whole
engine) the first time one is asked for.
"""

from __future__ import annotations

from typing import Any

from provider.render.templates.evaluator import Fetch, Limits, execute
from provider.render.templates.functions import FUNCTIONS
from provider.render.templates.nodes import Node
from provider.render.templates.parser import parse as _parse
from provider.render.templates.reads import VAULT_FUNCTIONS

__all__ = ["FUNCTION_NAMES", "parse", "render"]

FUNCTION_NAMES = frozenset(FUNCTIONS) | {*VAULT_FUNCTIONS, "and", "or"}


def parse(name: str, source: str) -> tuple[Node, ...]:
    """Checks a template without running it (raises TemplateError)."""
    return _parse(name, source, FUNCTION_NAMES)


def render(name: str, source: str, fetch: Fetch, data: Any = None, limits: Limits | None = None) -> str:
    """The rendered text; each distinct `secret` call is fetched once per render."""
    return execute(name, source, parse(name, source), data, fetch, limits or Limits())
