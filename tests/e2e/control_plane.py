"""A real Kubernetes control plane on loopback: etcd, kube-apiserver and kube-controller-manager.

The API server runs with real RBAC (`--authorization-mode=Node,RBAC`), a service-account
issuer and signing key, and TLS from a CA of the suite's own. The issuer is the API
server's own URL, so its OIDC discovery document and keys (`/.well-known/openid-configuration`,
`/openid/v1/jwks`) are where a JWT verifier looks for them; they are opened to
unauthenticated readers, as a cluster does for external verifiers. The admin is a static
bearer token in `system:masters`. Every request is audited (Metadata level) to a file, so a
test can tell which calls an identity made. kube-controller-manager runs only its garbage
collector: it deletes synced Secrets with their owners, as in a cluster. Nothing runs pods:
the kubelet stand-in plays the kubelet's part.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from kube_api import KubeApi, wait_for

from devkit import CertificateAuthority, free_port, write_pem
from devkit.procs import log_tail, stop_process

__all__ = ["ControlPlane"]

START_TIMEOUT_SECONDS = 90.0


@dataclass
class ControlPlane:
    directory: Path
    etcd: Path
    apiserver: Path
    controller_manager: Path
    ca: CertificateAuthority = field(default_factory=lambda: CertificateAuthority.create("e2e cluster CA"))
    admin_token: str = field(default_factory=lambda: secrets.token_hex(24), repr=False)
    port: int = 0
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_path(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def audit_log(self) -> Path:
        return self.directory / "apiserver-audit.log"

    def calls_by(self, username: str) -> list[dict[str, Any]]:
        """Every request the API server answered for `username`, from its audit log (in order)."""
        calls = []
        for line in self.audit_log.read_text().splitlines():
            event = json.loads(line)
            if event.get("user", {}).get("username") == username:
                calls.append(event)
        return calls

    def api(self) -> KubeApi:
        return KubeApi(self.url, self.admin_token, self.ca_path)

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_pem(self.ca_path, self.ca.cert_pem)
        self.ca_path.chmod(0o644)
        try:
            etcd_url = self._start_etcd()
            self.port = free_port()
            self._start_apiserver(etcd_url)
            wait_for(
                self._ready, START_TIMEOUT_SECONDS, f"kube-apiserver ready\n{self._logs('kube-apiserver')}"
            )
            self._open_issuer_discovery()
            self._start_controller_manager()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for proc in reversed(self._procs):
            stop_process(proc)
        self._procs.clear()

    def service_account_files(self, namespace: str, account: str, directory: Path) -> Path:
        """What a pod of `account` finds in its service-account directory: token, ca.crt, namespace."""
        directory.mkdir(parents=True, exist_ok=True)
        token = self.api().service_account_token(namespace, account, [self.url], seconds=24 * 3600)
        (directory / "token").write_text(token)
        (directory / "ca.crt").write_bytes(self.ca_path.read_bytes())
        (directory / "namespace").write_text(namespace)
        return directory

    def kubeconfig(self, path: Path, token: str) -> Path:
        """A kubeconfig for this API server with `token` (the driver's own, or the admin's)."""
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: e2e\n  cluster:\n    server: {self.url}\n"
            f"    certificate-authority: {self.ca_path}\n"
            f"users:\n- name: e2e\n  user:\n    token: {token}\n"
            "contexts:\n- name: e2e\n  context:\n    cluster: e2e\n    user: e2e\ncurrent-context: e2e\n"
        )
        path.chmod(0o600)
        return path

    # --- the processes ------------------------------------------------------------------------

    def _launch(self, name: str, argv: list[str]) -> None:
        with (self.directory / f"{name}.log").open("wb") as log:
            self._procs.append(
                subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.directory)
            )

    def _logs(self, name: str) -> str:
        return log_tail(self.directory / f"{name}.log", 40)

    def _start_etcd(self) -> str:
        client, peer = free_port(), free_port()
        url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
        self._launch(
            "etcd",
            [
                str(self.etcd), "--data-dir", str(self.directory / "etcd"), "--name", "e2e",
                "--listen-client-urls", url, "--advertise-client-urls", url,
                "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
                "--initial-cluster", f"e2e={peer_url}", "--unsafe-no-fsync",
            ],
        )  # fmt: skip
        wait_for(
            lambda: _http_ok(f"{url}/health"), START_TIMEOUT_SECONDS, f"etcd healthy\n{self._logs('etcd')}"
        )
        return url

    def _start_apiserver(self, etcd_url: str) -> None:
        serving = self.ca.issue_server(["localhost", "kubernetes.default.svc"], ["127.0.0.1"])
        cert = write_pem(self.directory / "apiserver.crt", serving.cert_pem)
        key = write_pem(self.directory / "apiserver.key", serving.key_pem)
        signing = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        sa_key = write_pem(
            self.directory / "sa.key",
            signing.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        sa_pub = write_pem(
            self.directory / "sa.pub",
            signing.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        )
        policy = self.directory / "audit-policy.yaml"
        policy.write_text(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\n"
            "omitStages: [RequestReceived]\nrules:\n- level: Metadata\n"
        )
        tokens = self.directory / "tokens.csv"
        tokens.write_text(f"{self.admin_token},admin,admin,system:masters\n")
        tokens.chmod(0o600)
        self._launch(
            "kube-apiserver",
            [
                str(self.apiserver), f"--etcd-servers={etcd_url}", f"--secure-port={self.port}",
                "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
                f"--tls-cert-file={cert}", f"--tls-private-key-file={key}",
                f"--client-ca-file={self.ca_path}",
                f"--token-auth-file={tokens}", f"--service-account-issuer={self.url}",
                f"--service-account-key-file={sa_pub}", f"--service-account-signing-key-file={sa_key}",
                "--authorization-mode=Node,RBAC", "--service-cluster-ip-range=10.96.0.0/24",
                f"--cert-dir={self.directory / 'certs'}", "--enable-priority-and-fairness=false",
                f"--audit-policy-file={policy}", f"--audit-log-path={self.audit_log}",
            ],
        )  # fmt: skip

    def _start_controller_manager(self) -> None:
        config = self.kubeconfig(self.directory / "controller-manager.kubeconfig", self.admin_token)
        self._launch(
            "kube-controller-manager",
            [
                str(self.controller_manager), f"--kubeconfig={config}", "--controllers=garbagecollector",
                "--leader-elect=false", "--secure-port=0", "--use-service-account-credentials=false",
            ],
        )  # fmt: skip
        time.sleep(0.5)
        if self._procs[-1].poll() is not None:
            raise RuntimeError(f"kube-controller-manager exited:\n{self._logs('kube-controller-manager')}")

    def _ready(self) -> bool:
        for proc in self._procs:
            if proc.poll() is not None:
                raise RuntimeError(f"a control-plane process exited:\n{self._logs('kube-apiserver')}")
        try:
            answer = requests.get(
                f"{self.url}/readyz",
                headers={"Authorization": f"Bearer {self.admin_token}"},
                verify=str(self.ca_path),
                timeout=5,
            )
        except requests.RequestException:
            return False
        return answer.status_code == 200

    def _open_issuer_discovery(self) -> None:
        """Let anyone read the issuer's discovery document and keys, as external JWT verifiers need."""
        self.api().apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "e2e-issuer-discovery-for-everyone"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "system:service-account-issuer-discovery",
                },
                "subjects": [
                    {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "Group",
                        "name": "system:unauthenticated",
                    }
                ],
            }
        )


def _http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
