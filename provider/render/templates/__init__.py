"""Vault Agent (consul-template) style templates, rendered without touching files or processes.

    lexer → parser → evaluator, with functions/encoders/values as leaves and errors at the bottom.

`render(name, source, fetch)` parses and runs a template; `secret` and `pkiCert` call `fetch(read)`.
`parse` and `execute` split the two, so a caller can check a template once and run it often.

The engine loads on first use (`engine`): most SecretProviderClasses have no template, and
held from the start it was 0.8 MiB of every node's idle RSS. Its few leaf modules that a
parsed request names (`nodes`, `reads`, `errors`) import on their own.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provider.render.templates.engine import FUNCTION_NAMES, parse, render
    from provider.render.templates.errors import TemplateError
    from provider.render.templates.evaluator import Fetch, Limits, execute
    from provider.render.templates.reads import SecretCall
    from provider.render.templates.values import PemEncoded, Secret

# Each name the package hands out, and the module of the engine it comes from.
_HOMES = {
    "FUNCTION_NAMES": "engine",
    "parse": "engine",
    "render": "engine",
    "TemplateError": "errors",
    "Fetch": "evaluator",
    "Limits": "evaluator",
    "execute": "evaluator",
    "SecretCall": "reads",
    "PemEncoded": "values",
    "Secret": "values",
}

__all__ = [  # noqa: RUF022 (in the order of _HOMES)
    "FUNCTION_NAMES",
    "parse",
    "render",
    "TemplateError",
    "Fetch",
    "Limits",
    "execute",
    "SecretCall",
    "PemEncoded",
    "Secret",
]


def __getattr__(name: str) -> object:
    """The engine's entry points, loaded the first time one is asked for (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # later look-ups find it here, without this function
    return value
