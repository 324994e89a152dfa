"""What the caching suites share: per-test Vault roles under cache/, pods and their polls, counters.

Each test gets its own Vault roles and mounts under `cache/` with TTLs of a few seconds,
so renewal points, max TTLs and token expiry are reached within the test; the evidence
comes from outside the provider: PostgreSQL's roles, OpenBao's lease and token stores
(read with the root token), and the provider's own /metrics for login counts. The `root`
fixture is in this directory's conftest.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hvac.exceptions
import requests
from cluster_kit import health_base, metric_samples
from harness import ProviderProcess, VaultEnv, pod_uid, unique

from devkit import PostgresServer, ServiceAccountTokenIssuer
from devkit import vault_setup as setup
from provider.tools.driver import MountResult

NAMESPACE = "team-a"
SERVICE_ACCOUNT = "app"
POLICY = "caching"
POLICY_HCL = """
path "cache/*" { capabilities = ["read", "create", "update"] }
path "secret/data/cache/*" { capabilities = ["read"] }
"""
POLLS = 5


def auth_role(
    root: Any,
    *,
    ttl: str = "10m",
    max_ttl: str | None = None,
    service_accounts: tuple[str, ...] = (SERVICE_ACCOUNT,),
) -> str:
    """A new kubernetes auth role for team-a with the module's policy; returns its name."""
    role = unique("cache")
    body: dict[str, Any] = {
        "bound_service_account_names": list(service_accounts),
        "bound_service_account_namespaces": [NAMESPACE],
        "token_policies": [POLICY],
        "audience": "vault",
        "token_ttl": ttl,
    }
    if max_ttl is not None:
        body["token_max_ttl"] = max_ttl
    root.adapter.post(f"/v1/auth/kubernetes/role/{role}", json=body)
    return role


@dataclass(frozen=True)
class DatabaseRole:
    mount: str
    role: str  # 8 characters: PostgreSQL user names start v-<display>-<role>-

    @property
    def creds_path(self) -> str:
        return f"{self.mount}/creds/{self.role}"


def database_role(root: Any, postgres: PostgresServer, default_ttl: str, max_ttl: str) -> DatabaseRole:
    """A database mount of its own under cache/ with one role issuing PostgreSQL logins."""
    name = "c" + uuid.uuid4().hex[:7]
    mount = f"cache/db-{name}"
    setup.enable_database(
        root,
        mount,
        postgres.vault_connection_url,
        postgres.superuser,
        postgres.password,
        name,
        default_ttl=default_ttl,
        max_ttl=max_ttl,
    )
    return DatabaseRole(mount, name)


def database_objects(db: DatabaseRole) -> str:
    """username and password from one lease, and the whole envelope (it carries the lease id)."""
    return (
        f"- objectName: username\n  secretPath: {db.creds_path}\n  secretKey: username\n"
        f"- objectName: password\n  secretPath: {db.creds_path}\n  secretKey: password\n"
        f"- objectName: lease.json\n  secretPath: {db.creds_path}\n"
    )


def leases_under(root: Any, prefix: str) -> list[str]:
    """The ids of the live leases under `prefix`, from OpenBao's lease store."""
    try:
        listed = root.adapter.list(f"/v1/sys/leases/lookup/{prefix}/")
    except hvac.exceptions.InvalidPath:
        return []
    return [f"{prefix}/{key}" for key in listed["data"]["keys"]]


def lease_lookup(root: Any, lease_id: str) -> dict[str, Any]:
    data: dict[str, Any] = root.adapter.put("/v1/sys/leases/lookup", json={"lease_id": lease_id})["data"]
    return data


@dataclass(frozen=True)
class Pod:
    """A pod and the service-account JWT the kubelet hands the driver for it."""

    name: str
    service_account: str
    jwt: str


def new_pod(issuer: ServiceAccountTokenIssuer, service_account: str = SERVICE_ACCOUNT) -> Pod:
    name = unique("pod")
    jwt = issuer.mint(NAMESPACE, service_account, name, pod_uid(NAMESPACE, name), audiences=["vault"])
    return Pod(name, service_account, jwt)


def poll(
    process: ProviderProcess, role: str, objects: str, pod: Pod, *, jwt: str | None = None, **parameters: str
) -> MountResult:
    """One rotation poll (a Mount) for `pod`; `jwt` replaces the pod's own token (a forged request).

    `parameters` are further SecretProviderClass parameters (credentialScope, refreshInterval).
    """
    return process.mount(
        {"roleName": role, "objects": objects, **parameters},
        namespace=NAMESPACE,
        service_account=pod.service_account,
        pod_name=pod.name,
        token=jwt or pod.jwt,
    )


def files(result: MountResult) -> dict[str, bytes]:
    return {file.path: file.contents for file in result.files}


def username(result: MountResult) -> str:
    return files(result)["username"].decode()


def lease_id(result: MountResult) -> str:
    lease: str = json.loads(files(result)["lease.json"])["lease_id"]
    assert lease, "the database answer carried no lease"
    return lease


def role_prefix(user: str, db: DatabaseRole) -> str:
    """The PostgreSQL user-name prefix of every credential of `db` (v-<display>-<role>-)."""
    assert f"-{db.role}-" in user, user
    return user[: user.index(f"-{db.role}-") + len(db.role) + 2]


class Timeline:
    """Sleeps to points in time measured from its start, so waits do not add up drift."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def at(self, seconds: float) -> None:
        time.sleep(max(0.0, self.start + seconds - time.monotonic()))

    def elapsed(self) -> float:
        return time.monotonic() - self.start


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


class Counters:
    """Counters from the provider's /metrics: logins and Vault requests by kind."""

    def __init__(self, process: ProviderProcess) -> None:
        self._url = f"{health_base(process)}/metrics"

    def read(self) -> dict[str, float]:
        samples = metric_samples(requests.get(self._url, timeout=5).text)
        counts: dict[str, float] = {}
        for (name, labels), value in samples.items():
            label = dict(labels)
            if name == "vault_csi_provider_vault_logins_total":
                key = f"login:{label['result']}"
            elif name == "vault_csi_provider_vault_requests_total":
                key = f"{label['kind']}:{label['status']}"
            else:
                continue
            counts[key] = counts.get(key, 0.0) + value
        return counts

    def since(self, before: dict[str, float]) -> dict[str, float]:
        """What grew since `before`, zeros left out."""
        now = self.read()
        return {key: value - before.get(key, 0.0) for key, value in now.items() if value != before.get(key)}


def kv_objects(vault: VaultEnv) -> str:
    path = unique("cache/token")
    vault.put_kv2(path, {"value": "v"})
    return f"- objectName: value\n  secretPath: secret/data/{path}\n  secretKey: value\n"
