"""The parse tree: frozen nodes, each with the offset where it starts in the template."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "Action",
    "Argument",
    "Branch",
    "Chain",
    "Command",
    "Dot",
    "Field",
    "Identifier",
    "Literal",
    "Node",
    "Pipeline",
    "Text",
    "Variable",
]


@dataclass(frozen=True, slots=True)
class Text:
    offset: int
    text: str


@dataclass(frozen=True, slots=True)
class Dot:
    offset: int


@dataclass(frozen=True, slots=True)
class Literal:
    """A string, number, bool or nil written in the template."""

    offset: int
    value: Any


@dataclass(frozen=True, slots=True)
class Field:
    """`.a.b`: fields of dot."""

    offset: int
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Variable:
    """`$x.a.b`; `$` alone is the data the render started with."""

    offset: int
    name: str
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Identifier:
    """A function name."""

    offset: int
    name: str


@dataclass(frozen=True, slots=True)
class Chain:
    """`(pipeline).a.b`."""

    offset: int
    node: Argument
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Command:
    offset: int
    args: tuple[Argument, ...]


@dataclass(frozen=True, slots=True)
class Pipeline:
    offset: int
    #: Variables declared (`:=`) or assigned (`=`) by the pipeline.
    variables: tuple[str, ...]
    declare: bool
    commands: tuple[Command, ...]


@dataclass(frozen=True, slots=True)
class Action:
    offset: int
    pipeline: Pipeline


@dataclass(frozen=True, slots=True)
class Branch:
    """`if`, `with` or `range`, with its body and else body."""

    offset: int
    keyword: str
    pipeline: Pipeline
    body: tuple[Node, ...]
    otherwise: tuple[Node, ...]


Argument = Dot | Literal | Field | Variable | Identifier | Chain | Pipeline
Node = Text | Action | Branch
