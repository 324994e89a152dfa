"""Rendering the kustomizations in daemonset/ with the real kustomize, built once from the Go module proxy.

kustomize is built with `go install sigs.k8s.io/kustomize/kustomize/v5@<version>` into
`~/.cache/vault-csi-provider/kustomize-<version>/` (or under `$XDG_CACHE_HOME`) the first
time (about 30 s, downloads included) and reused after that. `KUSTOMIZE=/path/to/kustomize`
uses a binary you already have instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml

# v5.8.3 needs Go 1.27; v5.8.2 (kustomize/api v0.21.2) builds with the Go 1.26 installed here.
KUSTOMIZE_MODULE = "sigs.k8s.io/kustomize/kustomize/v5"
KUSTOMIZE_VERSION = "v5.8.2"
BUILD_TIMEOUT_SECONDS = 600

REPO = Path(__file__).resolve().parents[2]
DAEMONSET_DIR = REPO / "daemonset"
EXAMPLES_DIR = DAEMONSET_DIR / "examples"
# Every kustomization an operator may build, by the name the tests use.
TARGETS = {
    "base": DAEMONSET_DIR / "base",
    "zero-permission": DAEMONSET_DIR / "overlays" / "zero-permission",
    "default": DAEMONSET_DIR / "overlays" / "default",
    "token-request": DAEMONSET_DIR / "overlays" / "token-request",
    "restart-state": DAEMONSET_DIR / "overlays" / "restart-state",
}


def tool_unavailable(message: str) -> NoReturn:
    """Skip when this machine lacks a tool, saying how to get it; on CI, fail instead."""
    # On CI a missing tool is a broken image, not a reason to skip.
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vault-csi-provider" / f"kustomize-{KUSTOMIZE_VERSION}"


def _build_kustomize(target: Path) -> None:
    go = shutil.which("go")
    if go is None:
        tool_unavailable(
            f"the deploy tests build kustomize {KUSTOMIZE_VERSION} with Go (1.26 or later), and `go` is "
            "not on PATH; install Go, or set KUSTOMIZE to a kustomize v5 binary"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build into a private directory and rename: a parallel session never sees half a binary.
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as scratch:
        env = {**os.environ, "GOBIN": scratch, "GOTOOLCHAIN": "local"}
        result = subprocess.run(
            [go, "install", f"{KUSTOMIZE_MODULE}@{KUSTOMIZE_VERSION}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_SECONDS,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(
                f"go install {KUSTOMIZE_MODULE}@{KUSTOMIZE_VERSION} failed ({result.returncode}):\n"
                f"{result.stderr[-3000:]}"
            )
        os.replace(Path(scratch) / "kustomize", target)


def find_kustomize() -> Path:
    """The kustomize binary: $KUSTOMIZE, else the cached build, else a fresh build."""
    explicit = os.environ.get("KUSTOMIZE")
    binary = Path(explicit) if explicit else _cache_dir() / "kustomize"
    if not binary.exists():
        if explicit:
            pytest.fail(f"KUSTOMIZE={explicit} does not exist")
        _build_kustomize(binary)
    version = subprocess.run(
        [str(binary), "version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout.strip()
    if not version.startswith("v5."):
        pytest.fail(f"{binary} is kustomize {version!r}; these manifests are written for kustomize v5")
    return binary


def build(kustomize: Path, directory: Path) -> list[dict[str, Any]]:
    """`kustomize build <directory>` as a list of objects."""
    result = subprocess.run(
        [str(kustomize), "build", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"kustomize build {directory.relative_to(REPO)} failed:\n{result.stderr}")
    return [document for document in yaml.safe_load_all(result.stdout) if document is not None]


class RenderedTargets(Mapping[str, list[dict[str, Any]]]):
    """TARGETS by name, each built on first use: a broken overlay fails only its own tests."""

    def __init__(self, kustomize: Path) -> None:
        self._kustomize = kustomize
        self._built: dict[str, list[dict[str, Any]]] = {}

    def __getitem__(self, name: str) -> list[dict[str, Any]]:
        if name not in self._built:
            self._built[name] = build(self._kustomize, TARGETS[name])
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(TARGETS)

    def __len__(self) -> int:
        return len(TARGETS)


def load_yaml(path: Path) -> list[dict[str, Any]]:
    """Every object in a (multi-document) YAML file."""
    return [document for document in yaml.safe_load_all(path.read_text()) if document is not None]
