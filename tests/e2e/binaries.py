"""The real binaries of the e2e suite, built from the Go module proxy and cached by version.

`go install module@version` refuses all of these (replace directives in their go.mod,
or a proxy that will not list versions), so each is built through a throwaway wrapper
module: it requires the module at its version, replaces every sibling module that the
module's own go.mod points at a local path with the same release, blank-imports the main
package, and runs `go mod tidy` and `go build`. The binary lands in
`~/.cache/vault-csi-provider/e2e/<name>-<version>/` (or under `$XDG_CACHE_HOME`) and is
reused from then on. A first build of all of them takes about 12 minutes on two cores
(kube-apiserver alone about 8; kube-controller-manager shares most of its build); a warm session takes none.

The Secrets Store CSI driver imports `monis.app/mlog`, which the proxy here refuses; the
wrapper replaces it with the stand-in in tests/conformance/mlog-standin.

    python tests/e2e/binaries.py            # build (or find) every binary, print the paths
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BINARIES", "BuildFailed", "GoBinary", "binary_path", "build"]

REPO = Path(__file__).resolve().parents[2]
MLOG_STANDIN = REPO / "tests" / "conformance" / "mlog-standin"
BUILD_TIMEOUT_SECONDS = 1800
# A replace line of a go.mod pointing a module at a directory: `X => ./dir` or `X => ../dir`.
_LOCAL_REPLACE = re.compile(r"^\s*(?:replace\s+)?(\S+)(?:\s+\S+)?\s+=>\s+(\.{1,2}/\S*)\s*$")


class BuildFailed(RuntimeError):
    """A binary could not be built; the message carries the end of Go's output."""


@dataclass(frozen=True)
class GoBinary:
    """How to build one binary: the module and version, its main package, what it needs replaced."""

    name: str  # the executable's file name
    module: str
    version: str
    package: str  # the main package's import path
    go: str  # the wrapper module's `go` directive
    sibling_version: str  # the release of the modules its go.mod replaces with local paths
    replaces: dict[str, Path] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.name}-{self.version}"


BINARIES = {
    "etcd": GoBinary(
        "etcd", "go.etcd.io/etcd/server/v3", "v3.6.16", "go.etcd.io/etcd/server/v3", "1.24", "v3.6.16"
    ),
    "kube-apiserver": GoBinary(
        "kube-apiserver",
        "k8s.io/kubernetes",
        "v1.34.4",
        "k8s.io/kubernetes/cmd/kube-apiserver",
        "1.24",
        # The staging modules k8s.io/api, k8s.io/apiserver, ... are released as v0.<minor>.<patch>.
        "v0.34.4",
    ),
    # Only its garbage collector runs: it deletes synced Secrets with their owners, as in a cluster.
    "kube-controller-manager": GoBinary(
        "kube-controller-manager",
        "k8s.io/kubernetes",
        "v1.34.4",
        "k8s.io/kubernetes/cmd/kube-controller-manager",
        "1.24",
        "v0.34.4",
    ),
    "driver-v1.6.0": GoBinary(
        "secrets-store-csi-driver",
        "sigs.k8s.io/secrets-store-csi-driver",
        "v1.6.0",
        "sigs.k8s.io/secrets-store-csi-driver/cmd/secrets-store-csi-driver",
        "1.24",
        "v1.6.0",
        {"monis.app/mlog": MLOG_STANDIN},
    ),
    "driver-v1.5.3": GoBinary(
        "secrets-store-csi-driver",
        "sigs.k8s.io/secrets-store-csi-driver",
        "v1.5.3",
        "sigs.k8s.io/secrets-store-csi-driver/cmd/secrets-store-csi-driver",
        "1.22",
        "v1.5.3",
        {"monis.app/mlog": MLOG_STANDIN},
    ),
}


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vault-csi-provider" / "e2e"


def binary_path(binary: GoBinary) -> Path:
    return cache_root() / binary.key / binary.name


def build(binary: GoBinary) -> Path:
    """The cached binary, built first if it is not there yet; raises BuildFailed."""
    target = binary_path(binary)
    if target.exists():
        return target
    go = shutil.which("go")
    if go is None:
        raise BuildFailed(f"building {binary.key} needs Go (1.24 or later) on PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-buildvcs=false"}
    # Build in a private directory and rename: a parallel session never sees half a binary.
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as scratch:
        wrapper = Path(scratch)
        _write_wrapper(go, env, binary, wrapper)
        _go(go, env, wrapper, binary, "mod", "tidy")
        _go(go, env, wrapper, binary, "build", "-trimpath", "-o", str(wrapper / binary.name), binary.package)
        os.replace(wrapper / binary.name, target)
    return target


def _write_wrapper(go: str, env: dict[str, str], binary: GoBinary, wrapper: Path) -> None:
    siblings = _local_replaces(go, env, binary)
    lines = [
        f"module e2e/{binary.name}",
        "",
        f"go {binary.go}",
        "",
        f"require {binary.module} {binary.version}",
        "",
    ]
    lines += [f"replace {module} => {module} {binary.sibling_version}" for module in siblings]
    lines += [f"replace {module} => {path}" for module, path in binary.replaces.items()]
    (wrapper / "go.mod").write_text("\n".join(lines) + "\n")
    (wrapper / "tools.go").write_text(f'//go:build tools\n\npackage tools\n\nimport _ "{binary.package}"\n')


def _local_replaces(go: str, env: dict[str, str], binary: GoBinary) -> list[str]:
    """The modules the published go.mod replaces with directories of its own repository."""
    listing = _go(go, env, None, binary, "mod", "download", "-json", f"{binary.module}@{binary.version}")
    gomod = Path(json.loads(listing)["GoMod"]).read_text()
    modules = []
    for line in gomod.splitlines():
        match = _LOCAL_REPLACE.match(line)
        if match and match.group(1) not in binary.replaces and _takes(match.group(1), binary.sibling_version):
            modules.append(match.group(1))
    return modules


def _takes(module: str, version: str) -> bool:
    """Whether `module` can be at `version`: v2 and later need a /vN path (etcd also replaces
    `go.etcd.io/etcd` with a directory that must not exist, to forbid the old module)."""
    major = int(version[1:].split(".", 1)[0])
    return major < 2 or module.endswith(f"/v{major}")


def _go(go: str, env: dict[str, str], cwd: Path | None, binary: GoBinary, *args: str) -> str:
    """`go args...` (in `cwd`), its standard output; BuildFailed with the end of its output otherwise."""
    done = subprocess.run(
        [go, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        said = (done.stderr + done.stdout)[-3000:]
        raise BuildFailed(f"go {' '.join(args[:2])} for {binary.key} failed:\n{said}")
    return done.stdout


if __name__ == "__main__":
    for name in sys.argv[1:] or list(BINARIES):
        print(name, build(BINARIES[name]), flush=True)
