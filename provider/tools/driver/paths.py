"""The driver's checks on `File.path` before it writes a Mount response.

Modelled on the Secrets Store CSI driver's `fileutil.Validate` (its copy of the
kubelet atomic writer's `validatePath`, plus a "must equal its cleaned form"
check) and on what makes the atomic write itself fail. This is the driver's view,
kept independent of the provider's own object-name checks so each can catch the
other's mistakes.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable

from provider.render.file_paths import path_conflicts

__all__ = ["MAX_ELEMENT_BYTES", "MAX_PATH_BYTES", "InvalidPayloadPath", "validate_payload_paths"]

MAX_PATH_BYTES = 4096
MAX_ELEMENT_BYTES = 255
_SHOWN_CHARS = 80


class InvalidPayloadPath(ValueError):
    """One or more `File.path` values the driver would refuse to write; `paths` names them."""

    def __init__(self, message: str, paths: Iterable[str]) -> None:
        super().__init__(message)
        self.paths = tuple(paths)


def _show(path: str) -> str:
    # A 4 KiB path would drown the message; the start is what identifies it.
    if len(path) <= _SHOWN_CHARS:
        return repr(path)
    return repr(path[:_SHOWN_CHARS]) + f"... ({len(path)} characters)"


def _byte_length(text: str) -> int:
    # Go measures strings in UTF-8 bytes, not characters.
    return len(text.encode("utf-8", "surrogatepass"))


def _problem(path: str) -> str | None:
    """Why the driver rejects this single path, in the order it checks; None when it passes."""
    if not path:
        return "must not be empty"
    if path.startswith("/"):
        return "must be a relative path"
    if _byte_length(path) > MAX_PATH_BYTES:
        return f"must be at most {MAX_PATH_BYTES} bytes long"
    elements = path.split("/")
    if ".." in elements:
        return "must not contain a '..' element"
    if any(_byte_length(element) > MAX_ELEMENT_BYTES for element in elements):
        return f"must not have an element longer than {MAX_ELEMENT_BYTES} bytes"
    if elements[0].startswith(".."):
        return "must not start with '..' (the atomic writer reserves such names, e.g. '..data')"
    # For a relative path without '..' elements, normpath is Go's filepath.Clean.
    cleaned = posixpath.normpath(path)
    if cleaned == ".":
        # Clean(".") is ".", so the driver's validation passes it, but writing a file
        # over the data directory itself then fails the mount.
        return "must name a file, not the volume root"
    if cleaned != path:
        return f"must be in clean form ({cleaned!r}): no '//', './' or trailing '/'"
    return None


def validate_payload_paths(paths: Iterable[str]) -> None:
    """Raise InvalidPayloadPath unless the driver would write every one of `paths`.

    Called on every non-empty Mount response before anything touches the volume.
    Each path is checked alone first (the first bad one is reported, like the
    driver); then all conflicts between paths are reported at once. The driver finds
    those only when the write fails, in map order; the outcome is the same failed mount.
    Duplicate paths are not an error: the driver keeps the last one.
    """
    paths = list(paths)
    for path in paths:
        problem = _problem(path)
        if problem is not None:
            raise InvalidPayloadPath(f"invalid file path {_show(path)}: {problem}", [path])
    conflicts = path_conflicts(paths)
    if conflicts:
        described = ", ".join(f"{_show(parent)} and {_show(nested)}" for parent, nested in conflicts)
        involved = sorted({path for pair in conflicts for path in pair})
        raise InvalidPayloadPath(
            f"conflicting file paths: {described} (a file cannot also be a directory)", involved
        )
