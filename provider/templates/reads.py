"""The Vault reads a template will make, found in its parse tree before it runs.

A Mount plans, checks and deduplicates every request before it talks to Vault, and a
template's reads join that plan. So each `secret` call must name its path and arguments
as quoted strings in the template itself; a path computed while rendering could not be
checked up front, and could be steered by the contents of another secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from provider.templates.errors import TemplateError, position
from provider.templates.nodes import (
    Action,
    Argument,
    Branch,
    Chain,
    Command,
    Identifier,
    Literal,
    Node,
    Pipeline,
)

__all__ = ["SecretCall", "call_key", "secret_calls"]

# How the evaluator tells calls apart: the path and the arguments, sorted, later ones winning.
CallKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True, slots=True)
class SecretCall:
    """One `secret "path" "k=v" ...` as written, with where it starts in the template."""

    offset: int
    path: str
    arguments: tuple[tuple[str, str], ...]

    @property
    def key(self) -> CallKey:
        return call_key(self.path, dict(self.arguments))


def call_key(path: str, arguments: dict[str, str]) -> CallKey:
    return path, tuple(sorted(arguments.items()))


def secret_calls(name: str, source: str, tree: tuple[Node, ...]) -> list[SecretCall]:
    """Every `secret` call in `tree` (parsed from `source`), in the order written.

    Raises TemplateError at the first call whose path or arguments are not quoted strings.
    """
    calls = []
    for command, first in _commands(tree):
        head = command.args[0]
        if not (isinstance(head, Identifier) and head.name == "secret"):
            continue
        problem = _literal_problem(command, first)
        if problem is not None:
            line, column = position(source, command.offset)
            raise TemplateError(name, line, column, problem)
        path, *pairs = [arg.value for arg in command.args[1:] if isinstance(arg, Literal)]
        arguments = []
        for pair in pairs:
            key, equals, value = pair.partition("=")
            if not equals:
                line, column = position(source, command.offset)
                raise TemplateError(name, line, column, f"secret: argument {key!r} must be key=value")
            arguments.append((key, value))
        calls.append(SecretCall(command.offset, path, tuple(arguments)))
    return calls


def _literal_problem(command: Command, first: bool) -> str | None:
    if not first:
        return 'secret must start its pipeline: write {{ secret "path" }}, not {{ "path" | secret }}'
    args = command.args[1:]
    if not args:
        return 'secret needs a path, as in secret "secret/data/app"'
    if not all(isinstance(arg, Literal) and isinstance(arg.value, str) for arg in args):
        return (
            "secret's path and arguments must be quoted strings written in the template, "
            "so every read is known before the Mount talks to Vault"
        )
    return None


def _commands(nodes: tuple[Node, ...]) -> Iterator[tuple[Command, bool]]:
    """Each command in the tree and whether it starts its pipeline."""
    for node in nodes:
        if isinstance(node, Action):
            yield from _pipeline_commands(node.pipeline)
        elif isinstance(node, Branch):
            yield from _pipeline_commands(node.pipeline)
            yield from _commands(node.body)
            yield from _commands(node.otherwise)


def _pipeline_commands(pipeline: Pipeline) -> Iterator[tuple[Command, bool]]:
    for at, command in enumerate(pipeline.commands):
        yield command, at == 0
        for arg in command.args[1:] if isinstance(command.args[0], Identifier) else command.args:
            yield from _argument_commands(arg)


def _argument_commands(arg: Argument) -> Iterator[tuple[Command, bool]]:
    if isinstance(arg, Pipeline):
        yield from _pipeline_commands(arg)
    elif isinstance(arg, Chain):
        yield from _argument_commands(arg.node)
    elif isinstance(arg, Identifier) and arg.name == "secret":
        # A bare `secret` as an argument is a call without a path.
        yield Command(arg.offset, (arg,)), True
