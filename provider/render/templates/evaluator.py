"""Runs a parse tree against data, with Go text/template semantics and `missingkey=error`.

`secret` and `pkiCert` call the caller's `fetch` once per distinct read in one render.
Output size and evaluation steps (each action, branch and range iteration) are bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provider.render.templates.errors import TemplateError, position
from provider.render.templates.functions import FUNCTIONS, FunctionError
from provider.render.templates.nodes import (
    Action,
    Argument,
    Branch,
    Chain,
    Command,
    Dot,
    Field,
    Identifier,
    Literal,
    Node,
    Pipeline,
    Text,
    Variable,
)
from provider.render.templates.reads import VAULT_FUNCTIONS, SecretCall
from provider.render.templates.values import PemEncoded, Secret, go_quote, go_string, is_true, type_name

__all__ = ["Fetch", "Limits", "execute"]

Fetch = Callable[[SecretCall], dict[str, Any]]
# The fields a template may read on each kind of Vault value (Go's exported names).
_FIELDS: dict[type, frozenset[str]] = {
    Secret: frozenset(Secret.__dataclass_fields__),
    PemEncoded: frozenset(PemEncoded.__dataclass_fields__) | {"Data"},
}
_NONE = object()


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one render: bytes written and evaluation steps."""

    max_output: int = 1 << 20
    max_steps: int = 100_000


class _Renderer:
    def __init__(self, name: str, source: str, fetch: Fetch, limits: Limits, data: Any) -> None:
        self.name = name
        self.source = source
        self.fetch = fetch
        self.limits = limits
        self.out: list[str] = []
        self.size = 0
        self.steps = 0
        self.offset = 0
        self.variables: list[tuple[str, Any]] = [("$", data)]
        self.fetched: dict[tuple[str, SecretCall], Secret | PemEncoded] = {}

    def fail(self, problem: str) -> TemplateError:
        line, column = position(self.source, self.offset)
        return TemplateError(self.name, line, column, problem)

    def step(self) -> None:
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise self.fail(f"template took more than {self.limits.max_steps} evaluation steps")

    def write(self, text: str) -> None:
        self.size += len(text.encode("utf-8", "surrogateescape"))
        if self.size > self.limits.max_output:
            raise self.fail(f"template output exceeds {self.limits.max_output} bytes")
        self.out.append(text)

    def walk(self, nodes: tuple[Node, ...], dot: Any) -> None:
        for node in nodes:
            if isinstance(node, Text):
                self.write(node.text)
                continue
            self.step()
            self.offset = node.offset
            if isinstance(node, Action):
                value = self.pipeline(node.pipeline, dot)
                if not node.pipeline.variables:
                    if value is None:
                        # Go would print "<no value>" into the file; a missing value is an error here.
                        raise self.fail("nothing to print: a key that index did not find, or a null value")
                    self.write(go_string(value))
            elif node.keyword == "range":
                self.range(node, dot)
            else:
                self.branch(node, dot)

    def branch(self, node: Branch, dot: Any) -> None:
        scope = len(self.variables)
        value = self.pipeline(node.pipeline, dot)
        if is_true(value):
            self.walk(node.body, value if node.keyword == "with" else dot)
        else:
            self.walk(node.otherwise, dot)
        del self.variables[scope:]

    def range(self, node: Branch, dot: Any) -> None:
        value = self.pipeline(node.pipeline, dot, declare=False)
        if isinstance(value, dict):
            items: list[tuple[Any, Any]] = [(key, value[key]) for key in sorted(value)]
        elif isinstance(value, (list, tuple)):
            items = list(enumerate(value))
        elif value is None:
            items = []
        else:
            raise self.fail(f"range can't iterate over a value of type {type_name(value)}")
        names = node.pipeline.variables
        for key, item in items:
            self.step()
            scope = len(self.variables)
            if len(names) == 1:
                self.variables.append((names[0], item))
            elif names:
                self.variables.extend([(names[0], key), (names[1], item)])
            self.walk(node.body, item)
            del self.variables[scope:]
        if not items:
            self.walk(node.otherwise, dot)

    def pipeline(self, pipeline: Pipeline, dot: Any, declare: bool = True) -> Any:
        value: Any = _NONE
        for command in pipeline.commands:
            value = self.command(command, dot, value)
        if declare and pipeline.variables:
            name = pipeline.variables[0]
            if pipeline.declare:
                self.variables.append((name, value))
            else:
                for at in range(len(self.variables) - 1, -1, -1):
                    if self.variables[at][0] == name:
                        self.variables[at] = (name, value)
                        break
        return value

    def command(self, command: Command, dot: Any, final: Any) -> Any:
        first, rest = command.args[0], command.args[1:]
        if isinstance(first, Identifier):
            return self.call(first.name, rest, dot, final)
        if rest or final is not _NONE:
            raise self.fail("can't give argument to non-function")
        return self.argument(first, dot)

    def call(self, name: str, args: tuple[Argument, ...], dot: Any, final: Any) -> Any:
        if name in ("and", "or"):
            # Go evaluates `and`/`or` arguments left to right and stops at the answer.
            count = len(args) + (final is not _NONE)
            if count < 1:
                raise self.fail(f"wrong number of args for {name}: want at least 1 got 0")
            value: Any = None
            for arg in args:
                value = self.argument(arg, dot)
                if is_true(value) != (name == "and"):
                    return value
            return final if final is not _NONE else value
        values = [self.argument(arg, dot) for arg in args]
        if final is not _NONE:
            values.append(final)
        if name in VAULT_FUNCTIONS:
            return self.vault(name, values)
        function, fewest, most = FUNCTIONS[name]
        if len(values) < fewest or (most is not None and len(values) > most):
            want = str(fewest) if fewest == most else f"at least {fewest}"
            raise self.fail(f"wrong number of args for {name}: want {want} got {len(values)}")
        try:
            return function(*values)
        except FunctionError as exc:
            raise self.fail(f"error calling {name}: {exc}") from None

    def vault(self, name: str, values: list[Any]) -> Secret | PemEncoded:
        """`secret` (a read, or a write with arguments) or `pkiCert` (always a write)."""
        if not values or not all(isinstance(value, str) for value in values):
            raise self.fail(f"{name} takes a path and optional key=value strings")
        path, *pairs = [str.__str__(value) for value in values]
        try:
            read = SecretCall.parse(name, path, pairs)
        except ValueError as exc:
            raise self.fail(str(exc)) from None
        memo = (name, read)
        if memo not in self.fetched:
            response = self.fetch(read)
            self.fetched[memo] = (
                PemEncoded.from_response(response) if name == "pkiCert" else Secret.from_response(response)
            )
        return self.fetched[memo]

    def argument(self, arg: Argument, dot: Any) -> Any:
        if isinstance(arg, Dot):
            return dot
        if isinstance(arg, Literal):
            return arg.value
        if isinstance(arg, Field):
            return self.fields(dot, arg.names)
        if isinstance(arg, Variable):
            value = next(value for name, value in reversed(self.variables) if name == arg.name)
            return self.fields(value, arg.names)
        if isinstance(arg, Chain):
            return self.fields(self.argument(arg.node, dot), arg.names)
        if isinstance(arg, Identifier):
            return self.call(arg.name, (), dot, _NONE)
        return self.pipeline(arg, dot)

    def fields(self, value: Any, names: tuple[str, ...]) -> Any:
        for name in names:
            if isinstance(value, dict):
                if name not in value:
                    raise self.fail(f"map has no entry for key {go_quote(name)}")
                value = value[name]
            elif isinstance(value, (Secret, PemEncoded)):
                if name not in _FIELDS[type(value)]:
                    raise self.fail(f"can't evaluate field {name} in type {type_name(value)}")
                value = getattr(value, name)
            elif value is None:
                raise self.fail(f"nil pointer evaluating interface {{}}.{name}")
            else:
                raise self.fail(f"can't evaluate field {name} in type {type_name(value)}")
        return value


def execute(name: str, source: str, tree: tuple[Node, ...], data: Any, fetch: Fetch, limits: Limits) -> str:
    """The text `tree` (parsed from `source`) renders with `data` as dot and `$`."""
    renderer = _Renderer(name, source, fetch, limits, data)
    renderer.walk(tree, data)
    return "".join(renderer.out)
