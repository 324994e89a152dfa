"""Interleaved warm polls timed by the driver's own Go client (`bench/drivertimer`).

Why: the harness's gRPC client is grpcio, from Python; the Secrets Store CSI driver is Go.
`drivertimer` calls both providers through the driver's plugin client builder and generated
client, so its pass measures what the driver waits for, and shows whether the harness's
client shapes a figure (at 0034bc4 it did not: both clients gave the same p50s and ratios).
The bench still samples each provider's CPU around the timed rounds, and sets the times
against its proxies (they share perf_counter's clock, CLOCK_MONOTONIC), so the figures of a
Go pass are those of a Python one.

`go build` runs once per run, into the scratch directory (seconds with a warm module cache).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.workload import MOUNT_TIMEOUT_SECONDS, MountSample, Pod
from devkit.go_build import go_build
from provider.tools.driver import DEFAULT_PERMISSION

__all__ = ["GO_MODULE", "GoTimer", "GoTimerFailed"]

GO_MODULE = Path(__file__).resolve().parent / "drivertimer"
_BUILD_TIMEOUT_SECONDS = 600.0
_SOCKET_SUFFIX = ".sock"


class GoTimerFailed(RuntimeError):
    """drivertimer could not be built or did not finish its pass; the message says why."""


class GoTimer:
    """The built drivertimer binary; `interleaved` runs one pass with it."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary

    @classmethod
    def build(cls, into: Path) -> GoTimer:
        """`go build` of drivertimer into `into`; GoTimerFailed without Go or when the build fails."""
        go = shutil.which("go")
        if go is None:
            raise GoTimerFailed("Go timer passes need the go command on PATH")
        binary = into / "drivertimer"
        done = go_build(go, GO_MODULE, binary, _BUILD_TIMEOUT_SECONDS)
        if done.returncode != 0:
            raise GoTimerFailed(f"go build of {GO_MODULE} failed:\n{done.stderr.strip()}")
        return cls(binary)

    def interleaved(
        self,
        sockets: Sequence[Path],
        pods: Sequence[Pod],
        polls: int,
        spacing_seconds: float,
        warmup: int,
        on_ready: Callable[[], None],
    ) -> tuple[list[MountSample], list[MountSample]]:
        """Each side's timed Mounts, ABBA; `on_ready` runs after the warm-up, before the first round.

        Both sockets must lie in one directory, as the driver's providers do.
        """
        directories = {path.parent for path in sockets}
        if len(directories) != 1 or any(path.suffix != _SOCKET_SUFFIX for path in sockets):
            raise GoTimerFailed(f"drivertimer needs both sockets as <dir>/<name>.sock, got {list(sockets)}")
        document = {
            "socket_dir": str(directories.pop()),
            "warmup": warmup,
            "polls": polls,
            "spacing_ms": spacing_seconds * 1000.0,
            "timeout_seconds": MOUNT_TIMEOUT_SECONDS,
            "sides": [
                {
                    "provider": path.stem,
                    "attributes": pod.attributes,
                    "secrets": pod.secrets,
                    "target_path": pod.target_path,
                    "permission": DEFAULT_PERMISSION,
                }
                for path, pod in zip(sockets, pods, strict=True)
            ],
        }
        with subprocess.Popen(
            [str(self.binary)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc:
            # All three are pipes (asked for above); the checks are for the type checker.
            assert proc.stdin is not None
            assert proc.stdout is not None
            assert proc.stderr is not None
            proc.stdin.write(json.dumps(document) + "\n")
            proc.stdin.flush()
            if proc.stdout.readline().strip() != "ready":
                proc.kill()
                raise GoTimerFailed(f"drivertimer stopped before its pass: {proc.stderr.read().strip()}")
            on_ready()
            proc.stdin.write("go\n")
            proc.stdin.close()
            output, errors = proc.stdout.read(), proc.stderr.read()
        if proc.returncode != 0:
            raise GoTimerFailed(f"drivertimer exited with {proc.returncode}: {errors.strip()}")
        sides = json.loads(output)["sides"]
        first, second = (_samples(side) for side in sides)
        return first, second


def _samples(side: dict[str, Any]) -> list[MountSample]:
    """One side's Mounts: the timed ones, then one failed sample per error (they carry no times)."""
    # Go encodes an empty slice as null.
    starts, ends = side["starts"] or [], side["ends"] or []
    samples = [MountSample(float(start), float(end)) for start, end in zip(starts, ends, strict=True)]
    samples += [MountSample(0.0, 0.0, error=str(side["error"])) for _ in range(int(side["errors"]))]
    return samples
