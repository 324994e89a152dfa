"""The house limits on provider/: no module over 300 lines, no function over 60 lines.

Run by `make test`. Generated code (provider/v1alpha1) is exempt. Prints each module
or function over its limit with its size and exits 1; silent and 0 when all fit.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
ROOT = Path(__file__).resolve().parent.parent / "provider"
EXEMPT = ("v1alpha1",)


def oversized(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    where = path.relative_to(ROOT.parent)
    found = []
    lines = text.count("\n")
    if lines > MAX_MODULE_LINES:
        found.append(f"{where}: {lines} lines (limit {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(
                    f"{where}:{node.lineno}: {node.name}() is {length} lines (limit {MAX_FUNCTION_LINES})"
                )
    return found


def main() -> int:
    paths = [p for p in sorted(ROOT.rglob("*.py")) if not any(part in EXEMPT for part in p.parts)]
    problems = [problem for path in paths for problem in oversized(path)]
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
