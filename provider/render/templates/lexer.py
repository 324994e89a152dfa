"""Splits a template into text and the tokens inside `{{ ... }}`, Go text/template style.

`{{- ` trims the whitespace before the action and ` -}}` the whitespace after it; the dash
must be separated from the action by whitespace, so `{{-3}}` is the number -3.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from provider.render.templates.errors import TemplateError, position

__all__ = ["Kind", "Token", "tokenize"]

_SPACE = " \t\r\n"
_IDENT_START = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
_IDENT = _IDENT_START + "0123456789"
_KEYWORDS = frozenset({"if", "else", "end", "range", "with"})
_UNSUPPORTED = frozenset({"define", "template", "block", "break", "continue"})
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


class Kind(enum.Enum):
    TEXT = "text"
    LEFT = "{{"
    RIGHT = "}}"
    KEYWORD = "keyword"
    IDENT = "identifier"
    FIELD = "field"
    VARIABLE = "variable"
    DOT = "."
    STRING = "string"
    NUMBER = "number"
    BOOL = "bool"
    NIL = "nil"
    PIPE = "|"
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","
    DECLARE = ":="
    ASSIGN = "="
    EOF = "end of template"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    value: str
    offset: int
    #: Whitespace came before this token inside the action (`$x .a` differs from `$x.a`).
    spaced: bool = False


class _Lexer:
    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.tokens: list[Token] = []
        self.trim_next = False

    def fail(self, offset: int, problem: str) -> TemplateError:
        line, column = position(self.source, offset)
        return TemplateError(self.name, line, column, problem)

    def run(self) -> list[Token]:
        src = self.source
        at = 0
        while at < len(src):
            left = src.find("{{", at)
            end = len(src) if left < 0 else left
            text = src[at:end]
            trim_left = (
                left >= 0 and src.startswith("{{-", left) and src[left + 3 : left + 4] in tuple(_SPACE)
            )
            if self.trim_next:
                text = text.lstrip(_SPACE)
            if trim_left:
                text = text.rstrip(_SPACE)
            self.trim_next = False
            if text:
                self.tokens.append(Token(Kind.TEXT, text, at))
            if left < 0:
                break
            at = self.action(left, left + (4 if trim_left else 2))
        self.tokens.append(Token(Kind.EOF, "", len(src)))
        return self.tokens

    def close_at(self, at: int) -> int | None:
        """The offset after `}}` or ` -}}` starting at `at`, or None."""
        src = self.source
        if src.startswith("}}", at):
            return at + 2
        if src[at : at + 1] in tuple(_SPACE):
            stripped = at
            while src[stripped : stripped + 1] in tuple(_SPACE) and stripped < len(src):
                stripped += 1
            if src.startswith("-}}", stripped):
                self.trim_next = True
                return stripped + 3
        return None

    def action(self, start: int, at: int) -> int:
        src = self.source
        comment_at = at
        while src[comment_at : comment_at + 1] in tuple(_SPACE) and comment_at < len(src):
            comment_at += 1
        if src.startswith("/*", comment_at) and comment_at == at:
            close = src.find("*/", at + 2)
            if close < 0:
                raise self.fail(start, "unclosed comment")
            after = self.close_at(close + 2)
            if after is None:
                raise self.fail(start, "comment ends before closing delimiter")
            return after
        self.tokens.append(Token(Kind.LEFT, "{{", start))
        spaced = True
        while True:
            if at >= len(src):
                raise self.fail(start, "unclosed action")
            after = self.close_at(at)
            if after is not None:
                self.tokens.append(Token(Kind.RIGHT, "}}", at))
                return after
            char = src[at]
            if char in _SPACE:
                spaced = True
                at += 1
                continue
            at = self.token(at, spaced)
            spaced = False

    def token(self, at: int, spaced: bool) -> int:
        src = self.source
        char = src[at]

        def add(kind: Kind, value: str, end: int) -> int:
            self.tokens.append(Token(kind, value, at, spaced))
            return end

        if src.startswith(":=", at):
            return add(Kind.DECLARE, ":=", at + 2)
        if char in "|(),=":
            return add(Kind(char), char, at + 1)
        if char == '"':
            value, end = self.quoted(at)
            return add(Kind.STRING, value, end)
        if char == "`":
            close = src.find("`", at + 1)
            if close < 0:
                raise self.fail(at, "unterminated raw string")
            return add(Kind.STRING, src[at + 1 : close], close + 1)
        if char == "." and src[at + 1 : at + 2] in tuple(_IDENT_START):
            end = self.word(at + 1)
            return add(Kind.FIELD, src[at + 1 : end], end)
        if char == ".":
            if src[at + 1 : at + 2].isdigit():
                end = self.number_end(at)
                return add(Kind.NUMBER, src[at:end], end)
            return add(Kind.DOT, ".", at + 1)
        if char == "$":
            end = self.word(at + 1)
            return add(Kind.VARIABLE, src[at:end], end)
        if char.isdigit() or (char in "+-" and src[at + 1 : at + 2].isdigit()):
            end = self.number_end(at)
            return add(Kind.NUMBER, src[at:end], end)
        if char in _IDENT_START:
            end = self.word(at)
            word = src[at:end]
            if word in _UNSUPPORTED:
                raise self.fail(at, f"{{{{ {word} }}}} is not supported")
            if word in _KEYWORDS:
                return add(Kind.KEYWORD, word, end)
            if word in ("true", "false"):
                return add(Kind.BOOL, word, end)
            if word == "nil":
                return add(Kind.NIL, word, end)
            return add(Kind.IDENT, word, end)
        raise self.fail(at, f"unexpected {char!r} in action")

    def word(self, at: int) -> int:
        while at < len(self.source) and self.source[at] in _IDENT:
            at += 1
        return at

    def number_end(self, at: int) -> int:
        src = self.source
        end = at + 1
        while end < len(src) and (
            src[end].isalnum() or src[end] in "._" or (src[end - 1] in "eEpP" and src[end] in "+-")
        ):
            end += 1
        return end

    def quoted(self, start: int) -> tuple[str, int]:
        src = self.source
        out: list[str] = []
        at = start + 1
        while True:
            if at >= len(src) or src[at] == "\n":
                raise self.fail(start, "unterminated quoted string")
            char = src[at]
            if char == '"':
                return "".join(out), at + 1
            if char != "\\":
                out.append(char)
                at += 1
                continue
            escape = src[at + 1 : at + 2]
            if escape in _SIMPLE_ESCAPES:
                out.append(_SIMPLE_ESCAPES[escape])
                at += 2
            elif escape in ('"', "\\", "'"):
                out.append(escape)
                at += 2
            elif escape in ("x", "u", "U"):
                width = {"x": 2, "u": 4, "U": 8}[escape]
                digits = src[at + 2 : at + 2 + width]
                try:
                    if len(digits) != width:
                        raise ValueError(digits)
                    out.append(chr(int(digits, 16)))
                except ValueError:
                    raise self.fail(at, f"invalid escape \\{escape}{digits} in string") from None
                at += 2 + width
            else:
                raise self.fail(at, f"unknown escape \\{escape} in string")


def tokenize(name: str, source: str) -> list[Token]:
    """The tokens of `source`, text included, ending with an EOF token."""
    return _Lexer(name, source).run()
