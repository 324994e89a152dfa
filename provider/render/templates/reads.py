"""The Vault requests a template will make, found in its parse tree before it runs.

A Mount plans, checks and deduplicates every request before it talks to Vault, and a
template's reads join that plan. So each `secret` call must name its path and arguments
as quoted strings in the template itself; a path computed while rendering could not be
checked up front, and could be steered by the contents of another secret.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from provider.render.templates.errors import TemplateError, position
from provider.render.templates.nodes import (
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

__all__ = ["VAULT_FUNCTIONS", "SecretCall", "SecretCallSite", "secret_calls"]

# The functions that talk to Vault: `secret` reads (or writes, given arguments), `pkiCert` writes.
VAULT_FUNCTIONS = ("secret", "pkiCert")


@dataclass(frozen=True, slots=True)
class SecretCall:
    """What one `secret` or `pkiCert` call asks of Vault; equal calls in a template are one request."""

    path: str
    arguments: tuple[tuple[str, str], ...]  # sorted by name; a repeated name keeps its last value
    write: bool

    @classmethod
    def parse(cls, function: str, path: str, pairs: Sequence[str]) -> SecretCall:
        """The read a call `function path "k=v" ...` makes; ValueError names a pair without `=`."""
        arguments: dict[str, str] = {}
        for pair in pairs:
            key, equals, value = pair.partition("=")
            if not equals:
                raise ValueError(f"{function}: argument {key!r} must be key=value")
            arguments[key] = value
        # As consul-template: arguments make `secret` a write; `pkiCert` always issues.
        write = function == "pkiCert" or bool(arguments)
        return cls(path, tuple(sorted(arguments.items())), write)


@dataclass(frozen=True, slots=True)
class SecretCallSite:
    """A call and where it starts in the template (for messages naming its line and column)."""

    offset: int
    read: SecretCall


def secret_calls(name: str, source: str, tree: tuple[Node, ...]) -> list[SecretCallSite]:
    """Every `secret` and `pkiCert` call in `tree` (parsed from `source`), in the order written.

    Raises TemplateError at the first call whose path or arguments are not quoted strings.
    """
    calls = []
    for command, first in _commands(tree):
        head = command.args[0]
        if not (isinstance(head, Identifier) and head.name in VAULT_FUNCTIONS):
            continue
        problem = _literal_problem(head.name, command, first)
        if problem is not None:
            line, column = position(source, command.offset)
            raise TemplateError(name, line, column, problem)
        path, *pairs = [arg.value for arg in command.args[1:] if isinstance(arg, Literal)]
        try:
            read = SecretCall.parse(head.name, path, pairs)
        except ValueError as exc:
            line, column = position(source, command.offset)
            raise TemplateError(name, line, column, str(exc)) from None
        calls.append(SecretCallSite(command.offset, read))
    return calls


def _literal_problem(function: str, command: Command, first: bool) -> str | None:
    if not first:
        return (
            f'{function} must start its pipeline: write {{{{ {function} "path" }}}}, '
            f'not {{{{ "path" | {function} }}}}'
        )
    args = command.args[1:]
    if not args:
        return f'{function} needs a path, as in {function} "secret/data/app"'
    if not all(isinstance(arg, Literal) and isinstance(arg.value, str) for arg in args):
        return (
            f"{function}'s path and arguments must be quoted strings written in the template, "
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
    elif isinstance(arg, Identifier) and arg.name in VAULT_FUNCTIONS:
        # A bare `secret` as an argument is a call without a path.
        yield Command(arg.offset, (arg,)), True
