"""Resident memory and CPU time of a process tree, from /proc (Linux).

The tree (a process and its descendants) rather than the process alone, so a provider
started through a wrapper (a shell, `unshare`, a launcher script) is measured whole.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcessSample", "sample_tree"]

_PROC = Path("/proc")
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcessSample:
    """VmRSS (KiB) and user+system CPU seconds, summed over the live tree; `processes` counted."""

    rss_kib: int
    cpu_seconds: float
    processes: int

    @property
    def rss_mib(self) -> float:
        return self.rss_kib / 1024.0


def sample_tree(pid: int) -> ProcessSample:
    """Sample `pid` and every live descendant; a vanished process contributes nothing."""
    rss = 0
    cpu = 0.0
    count = 0
    for member in _tree(pid):
        stat = _stat_fields(member)
        if stat is None:
            continue
        rss += _rss_kib(member)
        # Fields 14 and 15 (utime, stime), counted from the state field (3) after the comm.
        cpu += (int(stat[11]) + int(stat[12])) / _TICKS_PER_SECOND
        count += 1
    return ProcessSample(rss_kib=rss, cpu_seconds=cpu, processes=count)


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    members, pending = [], [root]
    while pending:
        pid = pending.pop()
        members.append(pid)
        pending.extend(children.get(pid, []))
    return members


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after `comm` (which may contain spaces and parentheses)."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _rss_kib(pid: int) -> int:
    try:
        lines = (_PROC / str(pid) / "status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0  # a zombie has no VmRSS
