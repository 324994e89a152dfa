"""The provider image: built from the repository's Dockerfile with buildah, inspected, run from its rootfs.

No registry can be reached here, so the Dockerfile's base (ARG PYTHON_IMAGE, python:3.11-slim
for users) is replaced by one the test makes from Debian packages with mmdebstrap:
python3, pip and venv, with two test-only changes, the PEP 668 marker removed (the image
installs into the system Python, as python:3.11-slim allows) and this machine's CA
bundle (its egress re-signs TLS; the builder stage's pip needs it). That base is cached as
a local image; the product image is built from the Dockerfile every session.

Running containers fails here (hybrid cgroups), so the image's entrypoint runs in its
unpacked rootfs (`buildah mount`) under chroot, as the image's user, in a mount namespace
where the node's providers directory and the pod's service-account files are bound where
the manifests put them. The init container's command from the DaemonSet runs first, as
root, exactly as the manifests run it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devkit.procs import log_tail, stop_process

__all__ = ["BASE_IMAGE", "IMAGE", "ImageRun", "build_image", "image_config", "mounted_rootfs"]

REPO = Path(__file__).resolve().parents[2]
# What python:3.11-slim has that the provider needs: Python with pip, CA certificates, and the
# C++ runtime grpcio's wheel links against (slim has it through apt).
PACKAGES = "python3,python3-pip,python3-venv,ca-certificates,libstdc++6"
# The tag names the package list, so a changed list builds a new base.
BASE_IMAGE = f"localhost/e2e-python-base:bookworm-{hashlib.sha256(PACKAGES.encode()).hexdigest()[:12]}"
IMAGE = "localhost/vault-csi-provider:e2e"
TIMEOUT_SECONDS = 900
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def tools_missing() -> list[str]:
    return [tool for tool in ("buildah", "mmdebstrap", "unshare", "chroot") if shutil.which(tool) is None]


def _run(*argv: str, timeout: float = TIMEOUT_SECONDS) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} ... failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def _image_exists(name: str) -> bool:
    return (
        subprocess.run(
            ["buildah", "inspect", "--type", "image", name], capture_output=True, check=False
        ).returncode
        == 0
    )


def build_base() -> None:
    """The test-only base image, from Debian packages; kept once built."""
    if _image_exists(BASE_IMAGE):
        return
    with tempfile.TemporaryDirectory(prefix="e2e-base-") as scratch:
        rootfs = Path(scratch) / "rootfs.tar"
        _run(
            "mmdebstrap", "--quiet", "--variant=essential", f"--include={PACKAGES}",
            '--customize-hook=rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
            f'--customize-hook=cat {CA_BUNDLE} > "$1"{CA_BUNDLE}',
            "bookworm", str(rootfs),
        )  # fmt: skip
        container = _run("buildah", "from", "scratch").strip()
        try:
            _run("buildah", "add", container, str(rootfs), "/")
            _run("buildah", "config", "--env", f"PATH={PATH}", container)
            _run("buildah", "commit", "--quiet", container, BASE_IMAGE)
        finally:
            _run("buildah", "rm", container)


def build_image() -> None:
    """The product image from the repository's Dockerfile (chroot isolation), on the test base."""
    build_base()
    _run(
        "buildah", "bud", "--isolation", "chroot", "--build-arg", f"PYTHON_IMAGE={BASE_IMAGE}",
        "--tag", IMAGE, "--file", str(REPO / "Dockerfile"), str(REPO),
    )  # fmt: skip


def image_config(name: str = IMAGE) -> dict[str, Any]:
    """The image's OCI config (User, Entrypoint, Cmd, Env) and its files' size in bytes."""
    inspected = json.loads(_run("buildah", "inspect", "--type", "image", name))
    config = dict(inspected["OCIv1"]["config"])
    config["layers"] = len(inspected["OCIv1"]["rootfs"]["diff_ids"])
    with mounted_rootfs(name) as root:
        config["size"] = sum(p.lstat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    return config


@contextmanager
def mounted_rootfs(name: str = IMAGE) -> Iterator[Path]:
    """The image's filesystem, mounted read-write for the duration (a working container of it)."""
    container = _run("buildah", "from", name).strip()
    try:
        yield Path(_run("buildah", "mount", container).strip())
    finally:
        subprocess.run(["buildah", "umount", container], capture_output=True, check=False)
        _run("buildah", "rm", container)


@dataclass
class ImageRun:
    """The image's entrypoint running in its rootfs, as the DaemonSet would run the container."""

    rootfs: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(
        self,
        args: Sequence[str],
        providers_dir: Path,
        service_account_dir: Path,
        env: dict[str, str],
        user: str,
        init_command: Sequence[str],
    ) -> None:
        root = self.rootfs
        script = " && ".join(
            [
                f"mkdir -p {root}/provider {root}/run/secrets/kubernetes.io/serviceaccount {root}/tmp",
                f'mount --bind "$0" {root}/provider',
                f'mount --bind "$1" {root}/run/secrets/kubernetes.io/serviceaccount',
                f"mount -t tmpfs e2e-tmp {root}/tmp",
                # The init container, as root with the image's own Python.
                f'chroot {root} "$2" "$3" "$4"',
                # The container: the image's user, its entrypoint and the DaemonSet's args.
                'shift 5 && exec "$@"',
            ]
        )
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                str(providers_dir), str(service_account_dir), *init_command, "-",
                "chroot", f"--userspec={user}", str(root), *self._entrypoint(), *args]  # fmt: skip
        assert len(init_command) == 3, "python3 -c <script>"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)

    def serving(self, socket: Path, uid: int) -> bool:
        """Whether the socket is there and `uid`'s; raises with the log if the process has exited."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"the image's provider exited ({self.proc.returncode}):\n{self.log_tail()}")
        return socket.exists() and socket.stat().st_uid == uid

    def _entrypoint(self) -> list[str]:
        entrypoint = image_config().get("Entrypoint") or []
        return list(entrypoint)

    def stop(self) -> int:
        assert self.proc is not None
        stop_process(self.proc, timeout=25)
        return self.proc.returncode

    def log_tail(self) -> str:
        return log_tail(self.log, 40)
