"""Snapshots of a volume written with the kubelet atomic writer, comparable across two writers.

A volume looks like this (see `provider.driver.writer`):

    <target>/..2026_11_28_12_00_00.123456789/   the files; the suffix is random
    <target>/..data -> ..2026_11_28_12_00_00.123456789
    <target>/name -> ..data/name                one link per top-level name

Two writers give their timestamped directories different names, so a `VolumeTree`
records those names only as "..<timestamp>"; everything else is kept exactly:
the top-level links and their targets, and below `..data` every path with its kind,
permission bits and bytes.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DATA_DIR", "Entry", "VolumeTree", "data_dir_name", "file_identities", "read_tree"]

DATA_DIR = "..data"
_TIMESTAMP_DIR = re.compile(r"^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\..+$")
_TIMESTAMP = "..<timestamp>"


@dataclass(frozen=True)
class Entry:
    """One path below `..data`: "file", "dir" or "symlink", its permission bits, and its bytes."""

    kind: str
    mode: int
    contents: bytes = b""

    def __repr__(self) -> str:
        # Short in assertion diffs: large files would drown the difference.
        if self.kind != "file":
            return f"Entry({self.kind}, {oct(self.mode)})"
        digest = hashlib.sha256(self.contents).hexdigest()[:12]
        return f"Entry(file, {oct(self.mode)}, {len(self.contents)} bytes, sha256 {digest})"


@dataclass(frozen=True)
class VolumeTree:
    """A volume as a reader of the pod sees it, minus the names of the timestamped directories."""

    #: Top-level symlinks other than `..data`: name -> link text ("..data/name").
    links: dict[str, str]
    #: The other top-level names, sorted: `..data -> ..<timestamp>`, `..<timestamp>`, anything else.
    internal: tuple[str, ...]
    #: Everything below `..data` by relative path; "." is the data directory itself.
    data: dict[str, Entry]

    @property
    def files(self) -> dict[str, bytes]:
        return {path: entry.contents for path, entry in self.data.items() if entry.kind == "file"}

    @property
    def modes(self) -> dict[str, int]:
        return {path: entry.mode for path, entry in self.data.items() if entry.kind == "file"}


def read_tree(target: Path) -> VolumeTree:
    """Snapshot `target`; an empty or missing directory gives an empty tree."""
    links: dict[str, str] = {}
    internal: list[str] = []
    names = sorted(os.listdir(target)) if target.is_dir() else []
    for name in names:
        path = target / name
        if name == DATA_DIR:
            internal.append(f"{DATA_DIR} -> {_normalise(os.readlink(path))}" if path.is_symlink() else name)
        elif path.is_symlink():
            links[name] = os.readlink(path)
        else:
            internal.append(_normalise(name))
    data: dict[str, Entry] = {}
    data_dir = target / DATA_DIR
    if data_dir.is_dir():
        data["."] = Entry("dir", stat.S_IMODE(data_dir.stat().st_mode))
        for root, dirs, files in os.walk(data_dir, followlinks=False):
            for name in (*dirs, *files):
                path = Path(root, name)
                data[path.relative_to(data_dir).as_posix()] = _entry(path)
    return VolumeTree(links=links, internal=tuple(sorted(internal)), data=dict(sorted(data.items())))


def data_dir_name(target: Path) -> str:
    """The timestamped directory `..data` points at."""
    return os.readlink(target / DATA_DIR)


def file_identities(target: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime in ns) of every file below `..data`: unchanged when nothing was rewritten."""
    identities = {}
    data_dir = target / DATA_DIR
    for root, _, files in os.walk(data_dir):
        for name in files:
            info = Path(root, name).lstat()
            identities[Path(root, name).relative_to(data_dir).as_posix()] = (info.st_ino, info.st_mtime_ns)
    return identities


def _entry(path: Path) -> Entry:
    info = path.lstat()
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISLNK(info.st_mode):
        return Entry("symlink", mode, os.readlink(path).encode())
    if stat.S_ISDIR(info.st_mode):
        return Entry("dir", mode)
    return Entry("file", mode, path.read_bytes())


def _normalise(name: str) -> str:
    return _TIMESTAMP if _TIMESTAMP_DIR.match(name) else name
