"""The one error the template engine raises, and where in the template it happened."""

from __future__ import annotations

from provider.errors import ProviderError

__all__ = ["TemplateError", "position"]


def position(source: str, offset: int) -> tuple[int, int]:
    """The 1-based line and column (in characters) of `offset` in `source`."""
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return line, column


class TemplateError(ProviderError):
    """A template that cannot be parsed or rendered.

    The message names the template, the line and column of the action, and the problem; it never
    carries a secret value, only names written in the template itself.
    """

    def __init__(self, name: str, line: int, column: int, problem: str) -> None:
        self.name = name
        self.line = line
        self.column = column
        self.problem = problem
        super().__init__(f"template {name!r}: line {line}, column {column}: {problem}")
