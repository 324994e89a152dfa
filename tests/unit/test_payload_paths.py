"""provider.payload_paths: the file paths the driver accepts, checked before anything is fetched."""

from __future__ import annotations

import pytest

from provider.render.file_paths import MAX_ELEMENT_BYTES, MAX_PATH_BYTES, path_conflicts, path_problem


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("a", id="simple"),
        pytest.param("db-password", id="dashes"),
        pytest.param("a/b", id="nested"),
        pytest.param("tls/ca/ca.crt", id="deeply-nested"),
        pytest.param(".env", id="hidden-file"),
        pytest.param("a/..data", id="dotdot-prefix-below-top"),
        pytest.param("a..b", id="dots-inside-name"),
        pytest.param("no", id="yaml-boolean-word"),
        pytest.param("ünïcödé", id="non-ascii"),
        pytest.param("x" * MAX_ELEMENT_BYTES, id="element-at-limit"),
        pytest.param("/".join(["x" * 240] * 17), id="path-at-limit"),
        pytest.param("a b", id="space"),
    ],
)
def test_accepted(path: str) -> None:
    """Relative, clean paths within the driver's limits have no problem."""
    assert path_problem(path) is None


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        pytest.param("", "is empty", id="empty"),
        pytest.param("/etc/passwd", "must be a relative path (it starts with '/')", id="absolute"),
        pytest.param("/", "must be a relative path (it starts with '/')", id="root"),
        pytest.param("..", "must not contain a '..' element", id="dotdot"),
        pytest.param("../x", "must not contain a '..' element", id="leading-dotdot-element"),
        pytest.param("a/../b", "must not contain a '..' element", id="inner-dotdot"),
        pytest.param("a/..", "must not contain a '..' element", id="trailing-dotdot"),
        pytest.param(
            "..data",
            "must not start with '..' (the driver reserves such names, e.g. '..data')",
            id="dotdot-data",
        ),
        pytest.param(
            "..2024_01_01/x",
            "must not start with '..' (the driver reserves such names, e.g. '..data')",
            id="dotdot-timestamp-dir",
        ),
        pytest.param(
            "...", "must not start with '..' (the driver reserves such names, e.g. '..data')", id="three-dots"
        ),
        pytest.param("a//b", "must be a clean path (no '//', './', '/.' or trailing '/')", id="double-slash"),
        pytest.param("a/", "must be a clean path (no '//', './', '/.' or trailing '/')", id="trailing-slash"),
        pytest.param("./a", "must be a clean path (no '//', './', '/.' or trailing '/')", id="dot-prefix"),
        pytest.param("a/./b", "must be a clean path (no '//', './', '/.' or trailing '/')", id="inner-dot"),
        pytest.param(".", "must be a clean path (no '//', './', '/.' or trailing '/')", id="dot"),
        pytest.param("a\nb", "contains a control or invisible character", id="newline"),
        pytest.param("a\tb", "contains a control or invisible character", id="tab"),
        pytest.param("\x00", "contains a control or invisible character", id="nul"),
        pytest.param("a\x7f", "contains a control or invisible character", id="delete"),
        pytest.param("a\x85b", "contains a control or invisible character", id="c1-next-line"),
        pytest.param("a\u200bb", "contains a control or invisible character", id="zero-width-space"),
        pytest.param(
            "x" * (MAX_ELEMENT_BYTES + 1), "has an element longer than 255 bytes", id="element-too-long"
        ),
        pytest.param("é" * 128, "has an element longer than 255 bytes", id="element-too-long-in-bytes"),
        pytest.param(
            "a/" + "x" * 256 + "/b", "has an element longer than 255 bytes", id="inner-element-too-long"
        ),
        pytest.param("/".join(["x" * 240] * 17) + "x", "is longer than 4096 bytes", id="path-too-long"),
        pytest.param("é" * 2049, "is longer than 4096 bytes", id="path-too-long-in-bytes"),
    ],
)
def test_rejected(path: str, problem: str) -> None:
    """Paths the driver would refuse get a problem text that completes 'objectName ...'."""
    assert path_problem(path) == problem


def test_limits_match_the_driver() -> None:
    """The driver's limits: 4096 bytes per path, 255 per element."""
    assert (MAX_PATH_BYTES, MAX_ELEMENT_BYTES) == (4096, 255)


@pytest.mark.parametrize(
    ("paths", "conflicts"),
    [
        pytest.param([], [], id="none"),
        pytest.param(["a", "b"], [], id="siblings"),
        pytest.param(["a/b", "a/c"], [], id="files-in-one-directory"),
        pytest.param(["a", "a/b"], [("a", "a/b")], id="file-and-file-inside"),
        pytest.param(["a/b", "a"], [("a", "a/b")], id="order-does-not-matter"),
        pytest.param(["a", "a/b/c"], [("a", "a/b/c")], id="grandchild"),
        pytest.param(
            ["a", "a/b", "a/b/c"], [("a", "a/b"), ("a", "a/b/c"), ("a/b", "a/b/c")], id="every-pair-reported"
        ),
        pytest.param(["a", "ab", "a.b", "a-b/c"], [], id="prefix-is-not-a-directory"),
        pytest.param(["a", "a"], [], id="duplicates-are-not-conflicts"),
        pytest.param(["x/a", "x/a/b"], [("x/a", "x/a/b")], id="nested-conflict"),
    ],
)
def test_path_conflicts(paths: list[str], conflicts: list[tuple[str, str]]) -> None:
    """A path that is another path's directory is reported as (file, nested) pairs, sorted."""
    assert path_conflicts(paths) == conflicts
