"""The file paths the driver accepts in a Mount response.

The driver validates every `File.path` before writing (and fails the whole mount
otherwise); we check `objectName` with the same rules while parsing the request,
so a bad name is an INVALID_ARGUMENT naming the object, not a failed write later.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["MAX_ELEMENT_BYTES", "MAX_PATH_BYTES", "path_conflicts", "path_problem"]

MAX_PATH_BYTES = 4096
MAX_ELEMENT_BYTES = 255


def path_problem(path: str) -> str | None:
    """Why the driver would reject `path`, or None when it is fine."""
    if not path:
        return "is empty"
    if not path.isprintable():
        # Control characters (C0, C1), line separators and invisible format characters.
        return "contains a control or invisible character"
    if path.startswith("/"):
        return "must be a relative path (it starts with '/')"
    if len(path.encode()) > MAX_PATH_BYTES:
        return f"is longer than {MAX_PATH_BYTES} bytes"
    elements = path.split("/")
    if ".." in elements:
        return "must not contain a '..' element"
    if elements[0].startswith(".."):
        return "must not start with '..' (the driver reserves such names, e.g. '..data')"
    if any(element in ("", ".") for element in elements):
        return "must be a clean path (no '//', './', '/.' or trailing '/')"
    if any(len(element.encode()) > MAX_ELEMENT_BYTES for element in elements):
        return f"has an element longer than {MAX_ELEMENT_BYTES} bytes"
    return None


def path_conflicts(paths: Iterable[str]) -> list[tuple[str, str]]:
    """Pairs (file, nested) where one path is a directory prefix of another ('a' and 'a/b')."""
    ordered = sorted(set(paths))
    files = set(ordered)
    conflicts = []
    for path in ordered:
        elements = path.split("/")
        for depth in range(1, len(elements)):
            parent = "/".join(elements[:depth])
            if parent in files:
                conflicts.append((parent, path))
    return conflicts
