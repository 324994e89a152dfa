"""The driver's checks on `File.path` values."""

from __future__ import annotations

import pytest

from provider.tools.driver import InvalidPayloadPath, validate_payload_paths


@pytest.mark.parametrize(
    "paths",
    [
        pytest.param(["db-password"], id="plain"),
        pytest.param(["a/b/c", "a/d", "e"], id="nested-with-shared-parent"),
        pytest.param([".hidden", ".a/.b"], id="single-dot-prefix"),
        pytest.param(["a..b", "x/..y", "x/y.."], id="dots-inside-names"),
        pytest.param(["x" * 255], id="element-at-limit"),
        pytest.param(["/".join(["y" * 240] * 17)], id="path-at-limit"),
        pytest.param(["é" * 127], id="multibyte-under-limit"),
        pytest.param(["a", "a"], id="duplicates-last-wins"),
        pytest.param(["a b", "tab\there"], id="spaces-and-control-characters"),
        pytest.param([], id="empty-payload"),
    ],
)
def test_accepted(paths: list[str]) -> None:
    """Paths the driver writes."""
    validate_payload_paths(paths)


@pytest.mark.parametrize(
    ("paths", "message", "named"),
    [
        pytest.param([""], "invalid file path '': must not be empty", [""], id="empty"),
        pytest.param(
            ["/etc/passwd"], "invalid file path '/etc/passwd': must be a relative path", None, id="absolute"
        ),
        pytest.param(
            ["../escape"], "invalid file path '../escape': must not contain a '..' element", None, id="dotdot"
        ),
        pytest.param(
            ["a/../b"],
            "invalid file path 'a/../b': must not contain a '..' element",
            None,
            id="dotdot-inside",
        ),
        pytest.param(
            [".."], "invalid file path '..': must not contain a '..' element", None, id="dotdot-alone"
        ),
        pytest.param(
            ["..data"],
            "invalid file path '..data': must not start with '..' "
            "(the atomic writer reserves such names, e.g. '..data')",
            None,
            id="reserved-data-dir",
        ),
        pytest.param(
            ["..2024_01_01/x"],
            "invalid file path '..2024_01_01/x': must not start with '..' "
            "(the atomic writer reserves such names, e.g. '..data')",
            None,
            id="reserved-timestamp-dir",
        ),
        pytest.param(
            ["./a"],
            "invalid file path './a': must be in clean form ('a'): no '//', './' or trailing '/'",
            None,
            id="dot-slash",
        ),
        pytest.param(
            ["a/"],
            "invalid file path 'a/': must be in clean form ('a'): no '//', './' or trailing '/'",
            None,
            id="trailing-slash",
        ),
        pytest.param(
            ["a//b"],
            "invalid file path 'a//b': must be in clean form ('a/b'): no '//', './' or trailing '/'",
            None,
            id="double-slash",
        ),
        pytest.param(
            ["a/./b"],
            "invalid file path 'a/./b': must be in clean form ('a/b'): no '//', './' or trailing '/'",
            None,
            id="dot-element",
        ),
        pytest.param(
            ["."], "invalid file path '.': must name a file, not the volume root", None, id="volume-root"
        ),
        pytest.param(
            ["x" * 256],
            f"invalid file path {'x' * 80!r}... (256 characters): "
            "must not have an element longer than 255 bytes",
            None,
            id="element-too-long",
        ),
        pytest.param(
            ["é" * 128],
            f"invalid file path {'é' * 80!r}... (128 characters): "
            "must not have an element longer than 255 bytes",
            None,
            id="element-too-long-in-bytes",
        ),
        pytest.param(
            ["/".join(["y" * 240] * 17) + "y"],
            f"invalid file path {'y' * 80!r}... (4097 characters): must be at most 4096 bytes long",
            None,
            id="path-too-long",
        ),
        pytest.param(
            ["good", "/bad", "../worse"],
            "invalid file path '/bad': must be a relative path",
            ["/bad"],
            id="first-bad-one",
        ),
        pytest.param(
            ["a", "a/b", "c/d", "c/d/e/f", "x"],
            "conflicting file paths: 'a' and 'a/b', 'c/d' and 'c/d/e/f' (a file cannot also be a directory)",
            ["a", "a/b", "c/d", "c/d/e/f"],
            id="conflicts-all-reported",
        ),
    ],
)
def test_rejected(paths: list[str], message: str, named: list[str] | None) -> None:
    """Each rule fails with the path and the rule named; `paths` lists the culprits."""
    with pytest.raises(InvalidPayloadPath) as caught:
        validate_payload_paths(paths)
    assert str(caught.value) == message
    assert list(caught.value.paths) == (paths if named is None else named)
