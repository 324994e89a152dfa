"""Write a Mount response into a volume directory the way the driver does.

The driver hands the files to the kubelet atomic writer (`fileutil.WritePayloads`):

    <target>/..2024_05_01_10_00_00.123456789/   the real files, nested dirs included
    <target>/..data -> ..2024_05_01_10_00_00.123456789
    <target>/db-password -> ..data/db-password   one link per top-level name
    <target>/certs -> ..data/certs               (nested paths live under it)

A new version is written into a fresh timestamped directory and published by
renaming a temporary `..data_tmp` link over `..data`, so a reader sees either the
whole old volume or the whole new one. Names that left the payload are unlinked,
then the old directory is removed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from provider.tools.driver.paths import validate_payload_paths

__all__ = ["DATA_DIR", "File", "write_payloads"]

DATA_DIR = "..data"
_NEW_DATA_DIR = "..data_tmp"
# Directories must let "group" and "other" traverse, whatever the umask.
_DIR_MODE = 0o755
# Go's os.FileMode keeps only the permission bits of File.mode for chmod.
_PERMISSION_BITS = 0o777


@dataclass(frozen=True)
class File:
    """One file of a Mount response: a relative path, permission bits and raw contents."""

    path: str
    mode: int
    contents: bytes


def write_payloads(target_dir: str | os.PathLike[str], files: Sequence[File]) -> bool:
    """Project `files` into `target_dir` atomically; return False when nothing had to change.

    `target_dir` must exist (the driver mounts a tmpfs there first). Paths are
    validated before anything is touched. Nothing is rewritten when every file is
    already there with the same contents and mode and nothing has to be removed;
    the `..data` link then keeps pointing at the same directory.

    The real driver compares contents only, so a mode-only change does not reach a
    mounted volume until some content changes; here a mode change is applied.
    """
    target = Path(target_dir)
    if not target.is_dir():
        raise FileNotFoundError(f"volume directory {str(target)!r} does not exist")
    validate_payload_paths(file.path for file in files)
    # Later duplicates win, as in the driver's map.
    payload = {file.path: file for file in files}
    _remove_unlinked_files(target, payload)

    data_link = target / DATA_DIR
    old_dir = _current_data_dir(data_link)
    stale: set[str] = set()
    if old_dir is not None:
        stale = _paths_to_remove(old_dir, payload)
        if not stale and not _differs(old_dir, payload):
            return False

    new_dir = _new_timestamped_dir(target)
    try:
        _write_files(new_dir, payload)
        _link_top_level_names(target, payload)
        _publish(target, new_dir)
    except BaseException:
        shutil.rmtree(new_dir, ignore_errors=True)
        raise

    for name in stale:
        if "/" not in name:
            (target / name).unlink(missing_ok=True)
    if old_dir is not None:
        shutil.rmtree(old_dir)
    return True


def _remove_unlinked_files(target: Path, payload: dict[str, File]) -> None:
    # Providers from before the driver wrote files put real files at the top level;
    # they would shadow the links into ..data forever, so the driver deletes them.
    for path in payload:
        entry = target / path.split("/", 1)[0]
        if entry.is_symlink() or not entry.exists():
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _current_data_dir(data_link: Path) -> Path | None:
    try:
        return data_link.parent / os.readlink(data_link)
    except FileNotFoundError:
        return None


def _paths_to_remove(old_dir: Path, payload: dict[str, File]) -> set[str]:
    """Relative paths (files and directories) of the old version that the new one lacks."""
    existing: set[str] = set()
    for root, dirs, names in os.walk(old_dir):
        relative_root = Path(root).relative_to(old_dir)
        for name in (*dirs, *names):
            existing.add((relative_root / name).as_posix())
    wanted: set[str] = set()
    for path in payload:
        elements = path.split("/")
        # Parents stay too: a directory still holding new files is not stale.
        wanted.update("/".join(elements[:depth]) for depth in range(1, len(elements) + 1))
    return existing - wanted


def _differs(old_dir: Path, payload: dict[str, File]) -> bool:
    for path, file in payload.items():
        on_disk = old_dir / path
        try:
            info = on_disk.lstat()
        except (FileNotFoundError, NotADirectoryError):
            # NotADirectoryError: a file of the old version now has to become a directory.
            return True
        # A directory where a file now goes: the driver fails reading it as a file;
        # writing the new version is what it should do, and what we do.
        if not on_disk.is_file() or on_disk.is_symlink():
            return True
        if info.st_mode & _PERMISSION_BITS != file.mode & _PERMISSION_BITS:
            return True
        if on_disk.read_bytes() != file.contents:
            return True
    return False


def _new_timestamped_dir(target: Path) -> Path:
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    new_dir = Path(tempfile.mkdtemp(prefix=stamp, dir=target))
    new_dir.chmod(_DIR_MODE)
    return new_dir


def _write_files(new_dir: Path, payload: dict[str, File]) -> None:
    for path, file in payload.items():
        destination = new_dir / path
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(file.contents)
        # chmod after writing: the mode given at creation is filtered by the umask.
        destination.chmod(file.mode & _PERMISSION_BITS)


def _link_top_level_names(target: Path, payload: dict[str, File]) -> None:
    for path in payload:
        name = path.split("/", 1)[0]
        link = target / name
        if not link.is_symlink():
            link.symlink_to(f"{DATA_DIR}/{name}")


def _publish(target: Path, new_dir: Path) -> None:
    temporary = target / _NEW_DATA_DIR
    # A crash between creating and renaming the temporary link leaves it behind; the
    # driver would then fail every later write, which helps nobody trying a payload.
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(new_dir.name)
    # rename(2) over the old link is the atomic switch readers rely on.
    os.replace(temporary, target / DATA_DIR)
