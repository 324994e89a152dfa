"""The kubelet atomic writer as the driver uses it, checked on a real directory."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from provider.tools.driver import DATA_DIR, File, InvalidPayloadPath, write_payloads

TIMESTAMPED = re.compile(r"^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\w+$")


def visible(target: Path) -> dict[str, tuple[int, bytes]]:
    """What a container sees: every file reachable from the top-level names, with mode and contents."""
    seen: dict[str, tuple[int, bytes]] = {}
    for entry in sorted(target.iterdir()):
        if entry.name.startswith(".."):
            continue
        paths = [entry] if entry.is_file() else sorted(p for p in entry.rglob("*") if p.is_file())
        for path in paths:
            info = path.stat()
            seen[path.relative_to(target).as_posix()] = (stat.S_IMODE(info.st_mode), path.read_bytes())
    return seen


def layout(target: Path) -> dict[str, str]:
    """The top level of the volume: each name mapped to its link target, or to 'dir'/'file'."""
    result = {}
    for entry in target.iterdir():
        if entry.is_symlink():
            result[entry.name] = os.readlink(entry)
        else:
            result[entry.name] = "dir" if entry.is_dir() else "file"
    return result


def data_dir(target: Path) -> str:
    return os.readlink(target / DATA_DIR)


@pytest.fixture
def target(tmp_path: Path) -> Path:
    volume = tmp_path / "volume"
    volume.mkdir()
    return volume


@pytest.fixture
def strict_umask() -> Iterator[None]:
    previous = os.umask(0o077)
    yield
    os.umask(previous)


PASSWORD = File("db-password", 0o644, b"s3cret")
CONFIG = File("config/app.json", 0o640, b'{"a":1}')


def test_first_write_layout(target: Path) -> None:
    """Files land in a timestamped dir behind ..data; top-level names are links into ..data."""
    assert write_payloads(target, [PASSWORD, CONFIG, File("config/nested/deep", 0o600, b"d")]) is True
    timestamped = data_dir(target)
    assert TIMESTAMPED.match(timestamped)
    assert layout(target) == {
        DATA_DIR: timestamped,
        timestamped: "dir",
        "db-password": "..data/db-password",
        "config": "..data/config",
    }
    assert stat.S_IMODE((target / timestamped).stat().st_mode) == 0o755
    assert visible(target) == {
        "config/app.json": (0o640, b'{"a":1}'),
        "config/nested/deep": (0o600, b"d"),
        "db-password": (0o644, b"s3cret"),
    }


@pytest.mark.usefixtures("strict_umask")
def test_modes_ignore_umask(target: Path) -> None:
    """Permission bits are applied exactly whatever the umask; higher bits are dropped as in Go."""
    files = [
        File("open", 0o644, b""),
        File("private", 0o400, b""),
        File("none", 0, b""),
        File("odd", 0o4755, b""),
    ]
    write_payloads(target, files)
    # Modes only: a mode-0 file is unreadable for anyone but root.
    data = target / DATA_DIR
    assert {f.path: stat.S_IMODE((data / f.path).stat().st_mode) for f in files} == {
        "open": 0o644,
        "private": 0o400,
        "none": 0,
        "odd": 0o755,
    }
    assert stat.S_IMODE((target / data_dir(target)).stat().st_mode) == 0o755


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        pytest.param(
            [PASSWORD, File("config/app.json", 0o640, b'{"a":2}')],
            {"db-password": (0o644, b"s3cret"), "config/app.json": (0o640, b'{"a":2}')},
            id="content-changed",
        ),
        pytest.param(
            [PASSWORD, File("config/app.json", 0o600, b'{"a":1}')],
            {"db-password": (0o644, b"s3cret"), "config/app.json": (0o600, b'{"a":1}')},
            id="mode-changed",
        ),
        pytest.param([PASSWORD], {"db-password": (0o644, b"s3cret")}, id="file-dropped"),
        pytest.param(
            [PASSWORD, CONFIG, File("new", 0o644, b"n")],
            {"db-password": (0o644, b"s3cret"), "config/app.json": (0o640, b'{"a":1}'), "new": (0o644, b"n")},
            id="file-added",
        ),
        pytest.param(
            [File("db-password/inner", 0o644, b"i"), CONFIG],
            {"db-password/inner": (0o644, b"i"), "config/app.json": (0o640, b'{"a":1}')},
            id="file-becomes-directory",
        ),
        pytest.param(
            [PASSWORD, File("config", 0o644, b"c")],
            {"db-password": (0o644, b"s3cret"), "config": (0o644, b"c")},
            id="directory-becomes-file",
        ),
        pytest.param([], {}, id="everything-dropped"),
    ],
)
def test_update_swaps_data_dir(
    target: Path, second: list[File], expected: dict[str, tuple[int, bytes]]
) -> None:
    """A different payload is written to a new timestamped dir; the old one and stale names disappear."""
    write_payloads(target, [PASSWORD, CONFIG])
    first_dir = data_dir(target)

    assert write_payloads(target, second) is True

    second_dir = data_dir(target)
    assert second_dir != first_dir
    assert not (target / first_dir).exists()
    assert visible(target) == expected
    top_level = {path.split("/")[0] for path in expected}
    assert layout(target) == {
        DATA_DIR: second_dir,
        second_dir: "dir",
        **{name: f"..data/{name}" for name in top_level},
    }


def test_nested_stale_file_removed_under_kept_directory(target: Path) -> None:
    """Dropping one file of a directory keeps the directory link and removes only that file."""
    write_payloads(target, [File("certs/a", 0o644, b"a"), File("certs/b", 0o644, b"b")])
    assert write_payloads(target, [File("certs/a", 0o644, b"a")]) is True
    assert visible(target) == {"certs/a": (0o644, b"a")}
    assert os.readlink(target / "certs") == "..data/certs"


def test_identical_payload_not_rewritten(target: Path) -> None:
    """Same paths, contents and modes: ..data, the directory and every file stay exactly as they were."""
    write_payloads(target, [PASSWORD, CONFIG])
    before_dir = data_dir(target)
    files = [target / before_dir / "db-password", target / before_dir / "config/app.json"]
    before = [(f.stat().st_ino, f.stat().st_mtime_ns) for f in files]
    link_before = (target / DATA_DIR).lstat().st_ino

    # Order and object identity of the payload do not matter, only its content.
    assert write_payloads(target, [File("config/app.json", 0o640, b'{"a":1}'), PASSWORD]) is False

    assert data_dir(target) == before_dir
    assert (target / DATA_DIR).lstat().st_ino == link_before
    assert [(f.stat().st_ino, f.stat().st_mtime_ns) for f in files] == before


def test_later_duplicate_wins(target: Path) -> None:
    """Two files with one path: the last one is written, as the driver's map keeps it."""
    write_payloads(target, [File("x", 0o644, b"first"), File("x", 0o600, b"second")])
    assert visible(target) == {"x": (0o600, b"second")}


def test_files_written_directly_by_old_providers_are_replaced(target: Path) -> None:
    """A real file or directory at a payload's top-level name is removed so the link into ..data can exist."""
    (target / "db-password").write_bytes(b"legacy")
    (target / "config").mkdir()
    (target / "config" / "old").write_bytes(b"legacy")
    (target / "unrelated").write_bytes(b"kept")

    write_payloads(target, [PASSWORD, CONFIG])

    assert os.readlink(target / "db-password") == "..data/db-password"
    assert os.readlink(target / "config") == "..data/config"
    assert (target / "unrelated").read_bytes() == b"kept"
    assert visible(target)["config/app.json"] == (0o640, b'{"a":1}')


def test_leftover_temporary_link_is_replaced(target: Path) -> None:
    """A ..data_tmp left by an interrupted write does not block the next one."""
    (target / "..data_tmp").symlink_to("..gone")
    assert write_payloads(target, [PASSWORD]) is True
    assert visible(target) == {"db-password": (0o644, b"s3cret")}
    assert not (target / "..data_tmp").is_symlink()


def test_invalid_payload_touches_nothing(target: Path) -> None:
    """Validation happens before the first write: a bad path leaves the volume as it was."""
    write_payloads(target, [PASSWORD])
    before = layout(target)
    with pytest.raises(InvalidPayloadPath) as caught:
        write_payloads(target, [File("ok", 0o644, b""), File("..data", 0o644, b"")])
    assert str(caught.value) == (
        "invalid file path '..data': must not start with '..' "
        "(the atomic writer reserves such names, e.g. '..data')"
    )
    assert layout(target) == before


def test_missing_target_directory(tmp_path: Path) -> None:
    """The writer does not create the volume; the driver mounts it first."""
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError) as caught:
        write_payloads(missing, [PASSWORD])
    assert str(caught.value) == f"volume directory {str(missing)!r} does not exist"
