"""Builds the parse tree from tokens, checking names as Go's parser does.

Functions must exist and variables must be declared before use; `else if` and `else with`
share the `end` of the branch they continue.
"""

from __future__ import annotations

from collections.abc import Collection

from provider.render.templates.errors import TemplateError, position
from provider.render.templates.lexer import Kind, Token, tokenize
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

__all__ = ["parse"]

_STOPS = (Kind.RIGHT, Kind.RPAREN, Kind.PIPE, Kind.EOF)
#: Deeper nesting of branches and parentheses than this is refused (it would exhaust the stack).
MAX_DEPTH = 100


def _describe(token: Token) -> str:
    if token.kind in (Kind.EOF, Kind.TEXT):
        return str(token.kind.value)
    return repr(token.value) if token.kind is Kind.STRING else f'"{token.value}"'


def _number(text: str) -> int | float:
    try:
        return int(text, 0)
    except ValueError:
        return float(text)


class _Parser:
    def __init__(self, name: str, source: str, functions: Collection[str]) -> None:
        self.name = name
        self.source = source
        self.functions = functions
        self.tokens = tokenize(name, source)
        self.at = 0
        self.variables = ["$"]
        self.depth = 0

    def fail(self, token: Token, problem: str) -> TemplateError:
        line, column = position(self.source, token.offset)
        return TemplateError(self.name, line, column, problem)

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.at + ahead, len(self.tokens) - 1)]

    def next(self) -> Token:
        token = self.peek()
        self.at += 1
        return token

    def expect(self, kind: Kind, context: str) -> Token:
        token = self.next()
        if token.kind is not kind:
            raise self.fail(token, f"unexpected {_describe(token)} in {context}")
        return token

    def template(self) -> tuple[Node, ...]:
        nodes, stop = self.nodes()
        if stop.kind is not Kind.EOF:
            raise self.fail(stop, f"unexpected {{{{{stop.value}}}}}")
        return nodes

    def nodes(self) -> tuple[tuple[Node, ...], Token]:
        """Nodes up to the end of input, `{{end}}` or `{{else`, and the token that stopped them."""
        nodes: list[Node] = []
        while True:
            token = self.next()
            if token.kind is Kind.TEXT:
                nodes.append(Text(token.offset, token.value))
                continue
            if token.kind is Kind.EOF:
                return tuple(nodes), token
            keyword = self.peek()
            if keyword.kind is Kind.KEYWORD:
                self.next()
                if keyword.value in ("end", "else"):
                    return tuple(nodes), keyword
                nodes.append(self.branch(token, keyword.value))
            else:
                pipeline = self.pipeline("command")
                self.expect(Kind.RIGHT, "command")
                nodes.append(Action(token.offset, pipeline))

    def nest(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(token, f"nested more than {MAX_DEPTH} levels deep")

    def branch(self, start: Token, keyword: str) -> Branch:
        self.nest(start)
        scope = len(self.variables)
        pipeline = self.pipeline(keyword)
        self.expect(Kind.RIGHT, keyword)
        body, stop = self.nodes()
        otherwise: tuple[Node, ...] = ()
        if stop.kind is Kind.EOF:
            raise self.fail(start, f"{{{{{keyword}}}}} has no matching {{{{end}}}}")
        if stop.value == "else":
            chained = self.peek()
            if chained.kind is Kind.KEYWORD and chained.value in ("if", "with") and keyword != "range":
                self.next()
                otherwise = (self.branch(stop, chained.value),)
            else:
                self.expect(Kind.RIGHT, "else")
                otherwise, stop = self.nodes()
                if stop.kind is Kind.EOF or stop.value != "end":
                    raise self.fail(start, f"{{{{{keyword}}}}} has no matching {{{{end}}}}")
                self.expect(Kind.RIGHT, "end")
        else:
            self.expect(Kind.RIGHT, "end")
        del self.variables[scope:]
        self.depth -= 1
        return Branch(start.offset, keyword, pipeline, body, otherwise)

    def pipeline(self, context: str) -> Pipeline:
        start = self.peek()
        names: list[str] = []
        declare = True
        if start.kind is Kind.VARIABLE:
            if self.peek(1).kind in (Kind.DECLARE, Kind.ASSIGN):
                names.append(self.next().value)
                declare = self.next().kind is Kind.DECLARE
            elif (
                context == "range" and self.peek(1).kind is Kind.COMMA and self.peek(2).kind is Kind.VARIABLE
            ):
                names.append(self.next().value)
                self.next()
                names.append(self.next().value)
                self.expect(Kind.DECLARE, "range declaration")
        for name in names:
            if not declare and name not in self.variables:
                raise self.fail(start, f"undefined variable {name!r}")
        commands: list[Command] = []
        while True:
            commands.append(self.command(context))
            if self.peek().kind is not Kind.PIPE:
                break
            self.next()
        if declare:
            self.variables.extend(names)
        return Pipeline(start.offset, tuple(names), declare and bool(names), tuple(commands))

    def command(self, context: str) -> Command:
        start = self.peek()
        args: list[Argument] = []
        while self.peek().kind not in _STOPS:
            token = self.peek()
            if args and not token.spaced:
                raise self.fail(token, f"missing space before {_describe(token)}")
            args.append(self.operand())
        if not args:
            raise self.fail(start, f"missing value for {context}")
        return Command(start.offset, tuple(args))

    def operand(self) -> Argument:
        term = self.term()
        names: list[str] = []
        while self.peek().kind is Kind.FIELD and not self.peek().spaced:
            names.append(self.next().value)
        if not names:
            return term
        if isinstance(term, Field):
            return Field(term.offset, term.names + tuple(names))
        if isinstance(term, Variable):
            return Variable(term.offset, term.name, term.names + tuple(names))
        if isinstance(term, (Literal, Identifier)):
            raise self.fail(self.peek(), "unexpected field after a literal or function name")
        return Chain(term.offset, term, tuple(names))

    def term(self) -> Argument:
        token = self.next()
        kind = token.kind
        if kind is Kind.IDENT:
            if token.value not in self.functions:
                raise self.fail(token, f"function {token.value!r} not defined")
            return Identifier(token.offset, token.value)
        if kind is Kind.DOT:
            return Dot(token.offset)
        if kind is Kind.FIELD:
            return Field(token.offset, (token.value,))
        if kind is Kind.VARIABLE:
            if token.value not in self.variables:
                raise self.fail(token, f"undefined variable {token.value!r}")
            return Variable(token.offset, token.value, ())
        if kind is Kind.STRING:
            return Literal(token.offset, token.value)
        if kind is Kind.BOOL:
            return Literal(token.offset, token.value == "true")
        if kind is Kind.NIL:
            return Literal(token.offset, None)
        if kind is Kind.NUMBER:
            try:
                return Literal(token.offset, _number(token.value))
            except ValueError:
                raise self.fail(token, f"bad number syntax: {token.value!r}") from None
        if kind is Kind.LPAREN:
            self.nest(token)
            pipeline = self.pipeline("parenthesized pipeline")
            self.expect(Kind.RPAREN, "parenthesized pipeline")
            self.depth -= 1
            return pipeline
        raise self.fail(token, f"unexpected {_describe(token)} in operand")


def parse(name: str, source: str, functions: Collection[str]) -> tuple[Node, ...]:
    """The parse tree of `source`; `functions` are the names a template may call."""
    return _Parser(name, source, functions).template()
