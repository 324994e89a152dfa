"""`go build` of one of the repository's test-side Go programs, exactly as its go.mod and go.sum pin.

Shared by the conformance suite (the driver's client) and the bench (its Go timer), so both
build the same way: `-mod=readonly` never updates the module files, and no VCS stamp is asked
of a checkout that may not be one.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["go_build"]


def go_build(go: str, module: Path, output: Path, timeout_seconds: float) -> subprocess.CompletedProcess[str]:
    """Run `go build` in `module` into `output`: the finished process, text output; no raise on failure."""
    goflags = " ".join(filter(None, [os.environ.get("GOFLAGS", ""), "-mod=readonly"]))
    return subprocess.run(
        [go, "build", "-buildvcs=false", "-o", str(output), "."],
        cwd=module,
        env={**os.environ, "GOFLAGS": goflags},
        capture_output=True,
        text=True,
        timeout=timeout_seconds,
        check=False,
    )
