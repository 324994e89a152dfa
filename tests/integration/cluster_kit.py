"""Test-side plumbing for the deployment tests: the provider as a pod in a (fake) cluster.

`Cluster` is a fake kube-apiserver over HTTPS with a CA of our own, plus the files a pod
finds under /var/run/secrets/kubernetes.io/serviceaccount (token, ca.crt, namespace) for
the provider's own service account. `Launcher` starts provider processes with an exact
environment: nothing of this machine's KUBERNETES_* or VAULT_* leaks in. `mount_once`
calls Mount once, without the driver's retries, and returns the code and message as the
driver would see them. `probe` and `metric_samples` read the health/metrics port.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest
import requests
from harness import ProviderProcess, pod_uid, provider_argv, provider_env, write_key_file
from prometheus_client.parser import text_string_to_metric_families

from devkit import (
    CertificateAuthority,
    FakeApiServer,
    JsonHttpServer,
    KeyPair,
    ServiceAccountTokenIssuer,
    StubRequest,
    StubResponse,
    write_pem,
)
from provider.serve.kube import SERVICE_ACCOUNT_DIR_ENV
from provider.tools.driver import PodInfo, build_mount_payload
from provider.v1alpha1 import service_pb2, service_pb2_grpc

__all__ = [
    "PROVIDER_NAMESPACE",
    "PROVIDER_SERVICE_ACCOUNT",
    "Cluster",
    "ClusterCa",
    "Launcher",
    "Outcome",
    "SlowVault",
    "driver_tokens",
    "health_base",
    "metric_samples",
    "mount_once",
    "probe",
]

PROVIDER_NAMESPACE = "vault-csi"
PROVIDER_SERVICE_ACCOUNT = "vault-csi-provider"
# The audience of a pod's default projected token: the API server itself.
API_AUDIENCE = "https://kubernetes.default.svc.cluster.local"
_IN_CLUSTER_VARIABLES = ("KUBERNETES_", "POD_NAMESPACE", SERVICE_ACCOUNT_DIR_ENV)
_HEALTH_LINE = re.compile(r"health and metrics on ([^\s:\"]+|\*):(\d+)")


class ClusterCa:
    """One CA and one serving certificate for every fake apiserver of a module."""

    def __init__(self) -> None:
        self.ca = CertificateAuthority.create("fake kubernetes CA")
        self.serving: KeyPair = self.ca.issue_server(["kubernetes.default.svc"], ["127.0.0.1"])


@dataclass
class Cluster:
    """A fake apiserver over HTTPS and the provider pod's service-account files for it."""

    api: FakeApiServer
    files: Path  # the service-account directory: token, ca.crt, namespace

    @classmethod
    def start(
        cls,
        issuer: ServiceAccountTokenIssuer,
        ca: ClusterCa,
        directory: Path,
        namespace: str = PROVIDER_NAMESPACE,
    ) -> Cluster:
        directory.mkdir(parents=True, exist_ok=True)
        write_pem(directory / "ca.crt", ca.ca.cert_pem)
        token = issuer.mint(
            namespace,
            PROVIDER_SERVICE_ACCOUNT,
            f"{PROVIDER_SERVICE_ACCOUNT}-x7k2p",
            pod_uid(namespace, PROVIDER_SERVICE_ACCOUNT),
            audiences=[API_AUDIENCE],
            ttl_seconds=3600,
        )
        (directory / "token").write_text(token)
        (directory / "namespace").write_text(namespace)
        api = FakeApiServer(issuer, tls=ca.serving)
        api.start()
        return cls(api, directory)

    def stop(self) -> None:
        self.api.stop()

    def env(self, *, pod_namespace: bool = True) -> dict[str, str]:
        """What the kubelet and the downward API put into the provider container's environment."""
        env = {
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(urlsplit(self.api.url).port),
            SERVICE_ACCOUNT_DIR_ENV: str(self.files),
        }
        if pod_namespace:
            env["POD_NAMESPACE"] = PROVIDER_NAMESPACE
        return env


class Launcher:
    """Starts provider processes with exactly the given environment; `stop_all` ends the rest."""

    def __init__(self, issuer: ServiceAccountTokenIssuer, tmp: pytest.TempPathFactory) -> None:
        self.issuer = issuer
        self.tmp = tmp
        self.started: list[ProviderProcess] = []

    def start(
        self,
        *args: str,
        vault_addr: str | None,
        env: Mapping[str, str] | None = None,
        key_file: Path | bool = True,
        argv: Sequence[str] | None = None,
        wait: bool = True,
    ) -> ProviderProcess:
        """A provider with the harness's flags plus `args`, or exactly `argv` after `python -m provider`.

        In `argv`, `{endpoint}` stands for the socket path. `key_file`: True for a new random
        -hmac-key-file, False for none, or a path.
        """
        directory = self.tmp.mktemp("deployment-provider")
        socket_path = directory / "vault.sock"
        key = write_key_file(directory / "hmac.key") if key_file is True else key_file or None
        if argv is None:
            command = provider_argv(socket_path, vault_addr=vault_addr, key_file=key, extra=args)
        else:
            command = [sys.executable, "-m", "provider", *(arg.format(endpoint=socket_path) for arg in argv)]
        base = {k: v for k, v in provider_env().items() if not k.startswith(_IN_CLUSTER_VARIABLES)}
        process = ProviderProcess(
            socket_path=socket_path,
            log_path=directory / "provider.log",
            key_file=key,
            issuer=self.issuer,
            argv=command,
            env={**base, **(env or {})},
        )
        process.start()
        self.started.append(process)
        if wait:
            process.wait_ready()
        return process

    def stop_all(self) -> None:
        for process in self.started:
            if process.proc is not None and process.proc.poll() is None:
                try:
                    process.stop()
                except Exception:
                    process.kill()


# --- Health and metrics ------------------------------------------------------------------


def health_base(process: ProviderProcess) -> str:
    """http://127.0.0.1:PORT of the provider's health server, from its latest start-up log line.

    The latest: a restarted provider appends to the same log, on a new port.
    """
    matches = list(_HEALTH_LINE.finditer(process.log_text()))
    assert matches, f"no health address in the log:\n{process.log_text()}"
    return f"http://127.0.0.1:{matches[-1][2]}"


def probe(base: str, route: str) -> tuple[int, str]:
    """GET a route of the health server: (status, body)."""
    response = requests.get(f"{base}{route}", timeout=5)
    return response.status_code, response.text


def metric_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Parsed Prometheus text: (sample name, labels) → value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


# --- One Mount, as the driver sends it, without the driver's retries ----------------------


@dataclass(frozen=True)
class Outcome:
    """What one Mount call returned: the gRPC code, its message, and the files on success."""

    code: grpc.StatusCode
    message: str
    files: dict[str, bytes]


def driver_tokens(token: str, audience: str = "vault") -> dict[str, tuple[str, str]]:
    """The driver's `serviceAccount.tokens` for one audience, expiring in ten minutes."""
    expires = (datetime.now(UTC) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {audience: (token, expires)}


def mount_once(
    process: ProviderProcess,
    parameters: Mapping[str, str],
    *,
    tokens: Mapping[str, tuple[str, str]] | None,
    namespace: str = "team-a",
    service_account: str = "app",
    pod_name: str = "app-0",
    spc_name: str = "app-secrets",
) -> Outcome:
    """Call Mount once over the socket (UNAVAILABLE is not retried, unlike the driver's client)."""
    uid = pod_uid(namespace, pod_name)
    pod = PodInfo(namespace=namespace, name=pod_name, uid=uid, service_account=service_account)
    attributes, secrets = build_mount_payload(parameters, spc_name=spc_name, pod=pod, tokens=tokens)
    request = service_pb2.MountRequest(
        attributes=attributes,
        secrets=secrets,
        target_path=f"/var/lib/kubelet/pods/{uid}/volumes/kubernetes.io~csi/secrets-store/mount",
        permission="420",
    )
    with grpc.insecure_channel(f"unix://{process.socket_path}") as channel:
        stub: Any = service_pb2_grpc.CSIDriverProviderStub(channel)  # type: ignore[no-untyped-call]
        try:
            response = stub.Mount(request, timeout=30)
        except grpc.RpcError as exc:
            return Outcome(exc.code(), exc.details() or "", {})
    return Outcome(grpc.StatusCode.OK, "", {file.path: file.contents for file in response.files})


# --- A Vault that answers slowly -----------------------------------------------------------


class SlowVault(JsonHttpServer):
    """A Vault stand-in whose login takes `delay` seconds; `login_started` is set when one arrives."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.login_started = threading.Event()
        self.add_route("POST", r"/v1/auth/kubernetes/login", self._login)
        self.add_route("GET", r"/v1/secret/data/slow", self._read)

    def _login(self, request: StubRequest) -> StubResponse:
        self.login_started.set()
        time.sleep(self.delay)
        auth = {"client_token": "s.slow-token", "lease_duration": 600, "renewable": True, "policies": ["app"]}
        return StubResponse(200, {"request_id": "login", "auth": auth})

    def _read(self, request: StubRequest) -> StubResponse:
        data = {"data": {"value": "slow-value"}, "metadata": {"version": 1}}
        return StubResponse(200, {"request_id": "read", "lease_id": "", "lease_duration": 0, "data": data})
