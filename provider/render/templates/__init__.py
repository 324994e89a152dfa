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
    from provider.render.templates.engine import (
        FUNCTION_NAMES,
        Fetch,
        Limits,
        PemEncoded,
        Secret,
        SecretCall,
        TemplateError,
        execute,
        parse,
        render,
    )

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


def __getattr__(name: str) -> object:
    """The engine's entry points, loaded the first time one is asked for (PEP 562)."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("provider.render.templates.engine"), name)
    globals()[name] = value  # later look-ups find it here, without this function
    return value
