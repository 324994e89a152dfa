"""The Secrets Store CSI driver, the real binary, in a mount namespace of its own.

Both generations we claim: v1.6.0 rotates when the kubelet republishes a volume
(`requiresRepublish`); v1.5.3 runs its own rotation reconciler, which reads in-cluster
configuration only, so it gets a service-account directory at the fixed in-pod path
inside its namespace. Either way it runs as the `secrets-store-csi-driver` service
account with the RBAC its own release ships (deploy/rbac-*.yaml), not as an admin.

The tmpfs volumes it mounts exist in its namespace only; `read` looks at them through
/proc/<pid>/root, as a pod's container would see them.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from control_plane import ControlPlane
from kube_api import wait_for

from devkit import free_port
from devkit.procs import log_tail, stop_process

__all__ = ["DriverProcess", "apply_driver_rbac", "driver_module_dir"]

NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "secrets-store-csi-driver"
# Inside the driver's namespace only: where in-cluster clients look for their credentials.
IN_POD_SERVICE_ACCOUNT_DIR = "/run/secrets/kubernetes.io/serviceaccount"


def driver_module_dir(version: str) -> Path:
    return Path.home() / "go" / "pkg" / "mod" / "sigs.k8s.io" / f"secrets-store-csi-driver@{version}"


def apply_driver_rbac(plane: ControlPlane, version: str, crds: bool = True) -> None:
    """The driver's own RBAC as its release deploys it, and (unless told not to) its CRDs."""
    api = plane.api()
    module = driver_module_dir(version)
    if crds:
        for crd in sorted((module / "config" / "crd" / "bases").glob("*.yaml")):
            api.apply_file(crd)
    for rbac in sorted((module / "deploy").glob("rbac-*.yaml")):
        api.apply_file(rbac)


@dataclass
class DriverProcess:
    binary: Path
    version: str
    plane: ControlPlane
    directory: Path
    providers_dir: Path
    rotation_poll_seconds: float = 2.0
    node: str = "e2e-node"
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def socket(self) -> Path:
        return self.directory / "csi.sock"

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        sa_dir = self.plane.service_account_files(
            NAMESPACE, SERVICE_ACCOUNT, self.directory / "serviceaccount"
        )
        kubeconfig = self.plane.kubeconfig(self.directory / "kubeconfig", (sa_dir / "token").read_text())
        argv = [
            str(self.binary),
            f"--endpoint=unix://{self.socket}",
            f"--nodeid={self.node}",
            f"--provider-volume={self.providers_dir}",
            "--additional-provider-volume-paths=",
            f"--kubeconfig={kubeconfig}",
            f"--metrics-addr=127.0.0.1:{free_port()}",
            "--enable-secret-rotation=true",
            f"--rotation-poll-interval={self.rotation_poll_seconds}s",
            "--v=4",
        ]
        # A private mount namespace: the driver's tmpfs mounts stay out of the host's mount
        # table, and the in-pod service-account path exists there only.
        script = (
            "mkdir -p /run/secrets && mount -t tmpfs e2e-driver /run/secrets && "
            f'mkdir -p {IN_POD_SERVICE_ACCOUNT_DIR} && mount --bind "$0" {IN_POD_SERVICE_ACCOUNT_DIR} && '
            'shift && exec "$@"'
        )
        port = self.plane.url.rsplit(":", 1)[1]
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "KUBERNETES_SERVICE_HOST": "127.0.0.1",
               "KUBERNETES_SERVICE_PORT": port}  # fmt: skip
        with (self.directory / "driver.log").open("wb") as log:
            self._proc = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    script,
                    str(sa_dir),
                    "-",
                    *argv,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        wait_for(self._listening, 30, f"the driver's socket {self.socket}\n{self.log_tail()}")

    def _listening(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            raise RuntimeError(f"the driver exited ({self._proc.returncode}):\n{self.log_tail()}")
        return self.socket.exists()

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc)
            self._proc = None

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.directory / "driver.log", lines)

    def log_text(self) -> str:
        return (self.directory / "driver.log").read_text(errors="replace")

    def visible(self, path: Path) -> Path:
        """`path` as the driver's mount namespace shows it (its tmpfs volumes included)."""
        return Path(f"/proc/{self.pid}/root") / path.relative_to("/")

    def read(self, path: Path) -> bytes:
        return self.visible(path).read_bytes()

    def wait_file(self, path: Path, expected: bytes, timeout: float = 30) -> None:
        def shows() -> bool:
            try:
                return self.read(path) == expected
            except OSError:
                return False

        wait_for(shows, timeout, f"{path} to hold the expected content")
