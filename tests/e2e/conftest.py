"""The real stack, once per session: etcd, kube-apiserver, kube-controller-manager, OpenBao, the
Secrets Store CSI driver binary, our provider in its providers directory, and the kubelet stand-in.

Built from the Go module proxy on first use (`binaries`), started on loopback, torn down at
the end. The driver and our provider run as their own service accounts with the RBAC they
ship: the driver's deploy/rbac-*.yaml, and our daemonset/ default overlay, applied to the
real API server. OpenBao reviews tokens through the real TokenReview API, as a service
account bound to system:auth-delegator, and its JWT auth reads the API server's OIDC
discovery. Needs root (mount namespaces, tmpfs) and Go; without them the suite is skipped,
and on CI (CI=true) it fails instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from binaries import BINARIES, BuildFailed, build
from control_plane import ControlPlane
from driver import DriverProcess, apply_driver_rbac
from harness import ProviderProcess, provider_argv, provider_env
from kube_api import KubeApi
from kubelet import CSI_DRIVER, Kubelet, csi_stubs

from devkit import OpenBaoServer, ServiceAccountTokenIssuer
from devkit import vault_setup as setup

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy"))
from render import RenderedTargets, find_kustomize

PROVIDER_NAMESPACE = "vault-csi-provider"
PROVIDER_ACCOUNT = "vault-csi-provider"  # the overlays' service account
VAULT_NAMESPACE = "vault"
VAULT_SERVER_NAME = "vault.e2e.test"
NODE = "e2e-node"
AUDIENCES = ("vault", "custom-audience")


def _unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def binaries() -> dict[str, Path]:
    if os.geteuid() != 0:
        _unavailable(
            "the e2e suite needs root: the driver mounts tmpfs volumes in a mount namespace of its own"
        )
    try:
        return {name: build(binary) for name, binary in BINARIES.items()}
    except BuildFailed as exc:
        _unavailable(f"cannot build the e2e binaries: {exc}")
        raise


@pytest.fixture(scope="session")
def plane(binaries: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    control = ControlPlane(
        tmp_path_factory.mktemp("control-plane"),
        binaries["etcd"],
        binaries["kube-apiserver"],
        binaries["kube-controller-manager"],
    )
    control.start()
    apply_driver_rbac(control, "v1.6.0")
    yield control
    control.stop()


@pytest.fixture(scope="session")
def api(plane: ControlPlane) -> KubeApi:
    return plane.api()


@pytest.fixture(scope="session")
def csidriver(api: KubeApi) -> dict[str, Any]:
    """The CSIDriver object as daemonset/examples has it, with the suite's second audience."""
    manifest = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "CSIDriver",
        "metadata": {"name": CSI_DRIVER},
        "spec": {
            "attachRequired": False,
            "podInfoOnMount": True,
            "tokenRequests": [{"audience": audience} for audience in AUDIENCES],
            "requiresRepublish": True,
            "volumeLifecycleModes": ["Ephemeral"],
        },
    }
    api.apply(manifest)
    return manifest


@dataclass(frozen=True)
class E2eVault:
    server: OpenBaoServer
    root: Any  # hvac client with the root token
    kubernetes_host: str
    kubernetes_ca_pem: str
    reviewer_jwt: str = field(repr=False)

    def enable_kubernetes_auth(self, client: Any) -> None:
        """Kubernetes auth at `kubernetes` of `client` (root or a namespace's) on the real TokenReview."""
        setup.enable_kubernetes_auth(
            client,
            "kubernetes",
            self.kubernetes_host,
            ca_pem=self.kubernetes_ca_pem,
            token_reviewer_jwt=self.reviewer_jwt,
        )

    @property
    def address(self) -> str:
        return self.server.address

    @property
    def tls_address(self) -> str:
        assert self.server.tls_address is not None
        return self.server.tls_address

    def put(self, path: str, data: dict[str, Any]) -> None:
        setup.put_kv(self.root, "secret", path, data)


@pytest.fixture(scope="session")
def e2e_vault(plane: ControlPlane, api: KubeApi) -> Iterator[E2eVault]:
    """OpenBao with Kubernetes auth on the real TokenReview API and JWT auth on its OIDC discovery."""
    ca_pem = plane.ca_path.read_text()
    api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": VAULT_NAMESPACE}})
    api.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "vault", "namespace": VAULT_NAMESPACE},
        }
    )
    api.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "vault-token-reviewer"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:auth-delegator",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "vault", "namespace": VAULT_NAMESPACE}],
        }
    )
    reviewer = api.service_account_token(VAULT_NAMESPACE, "vault", [plane.url], seconds=24 * 3600)
    with OpenBaoServer(tls_server_name=VAULT_SERVER_NAME, require_client_cert=True) as server:
        root = server.client()
        vault = E2eVault(server, root, plane.url, ca_pem, reviewer)
        vault.enable_kubernetes_auth(root)
        root.sys.enable_auth_method("jwt", path="jwt")
        root.write("auth/jwt/config", oidc_discovery_url=plane.url, oidc_discovery_ca_pem=ca_pem)
        yield vault


@pytest.fixture(scope="session")
def overlays() -> RenderedTargets:
    return RenderedTargets(find_kustomize())


@pytest.fixture(scope="session")
def providers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("providers")


def in_cluster_env(plane: ControlPlane, sa_dir: Path | None) -> dict[str, str]:
    """A pod's view of the cluster: the service host and port, and (optionally) its token files."""
    env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": plane.url.rsplit(":", 1)[1]}
    if sa_dir is not None:
        env["VAULT_CSI_PROVIDER_SERVICE_ACCOUNT_DIR"] = str(sa_dir)
    return env


@dataclass
class ProviderUnderTest:
    """Our provider process, restartable on the same socket (a DaemonSet pod replaced on its node)."""

    socket: Path
    vault_addr: str
    env: dict[str, str]
    log: Path
    flags: tuple[str, ...] = ()
    key_file: Path | None = None
    process: ProviderProcess | None = None

    def start(self) -> ProviderUnderTest:
        self.process = start_provider(
            self.socket, self.vault_addr, self.env, self.log, *self.flags, key_file=self.key_file
        )
        return self

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.process is not None:
            code = self.process.stop()
            self.process = None
            assert code == 0, self.log.read_text()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def audit_log(self) -> Path:
        return self.log.parent / "audit.jsonl"


def start_provider(
    socket: Path, vault_addr: str, env: dict[str, str], log: Path, *flags: str, key_file: Path | None = None
) -> ProviderProcess:
    process = ProviderProcess(
        socket_path=socket,
        log_path=log,
        key_file=key_file,
        issuer=ServiceAccountTokenIssuer(),
        argv=provider_argv(socket, vault_addr=vault_addr, key_file=key_file, extra=flags),
        env=provider_env(env),
    )
    process.start()
    process.wait_ready()
    return process


@pytest.fixture(scope="session")
def provider(
    plane: ControlPlane,
    api: KubeApi,
    e2e_vault: E2eVault,
    overlays: RenderedTargets,
    providers_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ProviderUnderTest]:
    """Our provider as the default overlay runs it: its own service account and Role, the HMAC key
    Secret created on first start, in the driver's providers directory."""
    api.apply_all(overlays["default"])
    directory = tmp_path_factory.mktemp("provider")
    sa_dir = plane.service_account_files(
        PROVIDER_NAMESPACE, "vault-csi-provider", directory / "serviceaccount"
    )
    process = ProviderUnderTest(
        providers_dir / "vault.sock",
        e2e_vault.address,
        in_cluster_env(plane, sa_dir),
        directory / "provider.log",
        ("-audit-log=" + str(directory / "audit.jsonl"),),
    ).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def csi(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return csi_stubs(tmp_path_factory.mktemp("csi-stubs"))


@pytest.fixture(scope="session")
def driver(
    binaries: dict[str, Path],
    plane: ControlPlane,
    providers_dir: Path,
    provider: ProviderUnderTest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DriverProcess]:
    """The Secrets Store CSI driver v1.6.0: rotation through requiresRepublish."""
    directory = tmp_path_factory.mktemp("driver")
    process = DriverProcess(binaries["driver-v1.6.0"], "v1.6.0", plane, directory, providers_dir)
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def kubelet(
    api: KubeApi,
    csidriver: dict[str, Any],
    driver: DriverProcess,
    csi: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Kubelet]:
    stand_in = Kubelet(api, driver.socket, tmp_path_factory.mktemp("kubelet"), NODE, csi)
    stand_in.start()
    yield stand_in
    stand_in.stop()
