"""Restart without churn through the real driver: the provider restarted while a pod's volume is polled.

The session provider is restarted with `-state-dir` for this module (its HMAC key is the
default overlay's Secret, the same before and after). The pod reads a PostgreSQL
credential, a PKI certificate and a KV secret from an OpenBao of this module's own with a
file audit device (the SecretProviderClass names it with `vaultAddress`), so Vault's own
record shows what the restart cost: nothing but lookups.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import E2eVault, ProviderUnderTest
from cryptography import x509
from driver import DriverProcess
from kube_api import KubeApi, wait_for
from kubelet import Kubelet
from scenario_kit import (
    MountedPod,
    create_namespace,
    create_service_account,
    objects_yaml,
    pod_manifest,
    secret_provider_class,
)

from bench.audit import AuditLog
from devkit import OpenBaoServer, PostgresServer
from devkit import vault_setup as setup

NS = "restart"
NODE = "e2e-node"
DB_ROLE = "rstatee2"


@pytest.fixture(scope="module")
def audited(api: KubeApi, e2e_vault: E2eVault, postgres: PostgresServer) -> Iterator[OpenBaoServer]:
    """OpenBao with a file audit device, Kubernetes auth on the real TokenReview, PKI and PostgreSQL."""
    create_namespace(api, NS)
    create_service_account(api, NS, "app")
    with OpenBaoServer(audit=True) as server:
        root = server.client()
        e2e_vault.enable_kubernetes_auth(root)
        setup.write_policy(
            root,
            "restart",
            'path "secret/data/restart/*" { capabilities = ["read"] }\n'
            f'path "database/creds/{DB_ROLE}" {{ capabilities = ["read"] }}\n'
            'path "pki/issue/web" { capabilities = ["create", "update"] }',
        )
        setup.kubernetes_role(root, "kubernetes", "restart", ["app"], [NS], ["restart"], ttl="20m")
        setup.enable_kv(root, "secret", version=2)
        setup.put_kv(root, "secret", "restart/app", {"api-key": "k-restart"})
        setup.enable_pki(root, "pki", "web", ["example.test"])
        setup.enable_database(
            root, "database", postgres.vault_connection_url, postgres.superuser, postgres.password, DB_ROLE
        )
        yield server


@pytest.fixture(scope="module")
def stateful(
    provider: ProviderUnderTest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProviderUnderTest]:
    """The session provider with -state-dir for this module; as it was afterwards."""
    flags = provider.flags
    provider.flags = (*flags, f"-state-dir={tmp_path_factory.mktemp('state') / 'state'}")
    provider.restart()
    try:
        yield provider
    finally:
        provider.flags = flags
        provider.restart()


OBJECTS = f"""
- objectName: username
  secretPath: database/creds/{DB_ROLE}
  secretKey: username
- objectName: password
  secretPath: database/creds/{DB_ROLE}
  secretKey: password
- objectName: tls.crt
  secretPath: pki/issue/web
  method: PUT
  secretArgs:
    common_name: app.example.test
    ttl: 1h
  secretKey: certificate
- objectName: api-key
  secretPath: secret/data/restart/app
  secretKey: api-key
"""


def polls_of(provider: ProviderUnderTest, pod: str) -> list[dict[str, Any]]:
    """The provider's audit records (-audit-log) of the pod's Mounts, in order."""
    lines = provider.audit_log.read_text().splitlines()
    return [record for line in lines if (record := json.loads(line))["pod"]["name"] == pod]


def test_a_restart_mid_life_keeps_the_pods_credential_and_certificate(
    audited: OpenBaoServer,
    stateful: ProviderUnderTest,
    api: KubeApi,
    kubelet: Kubelet,
    driver: DriverProcess,
    postgres: PostgresServer,
) -> None:
    """The driver's rotation polls after a restart get the same user and serial; OpenBao's audit log
    shows no login, no credential, no certificate and no token for them."""
    spc = "restart-spc"
    parameters = {"roleName": "restart", "objects": objects_yaml(OBJECTS), "vaultAddress": audited.address}
    secret_provider_class(api, NS, spc, parameters)
    pod = MountedPod.run(api, kubelet, driver, pod_manifest(NS, "restarted", "app", {"vol": spc}, NODE))
    user = pod.read("vol", "username")
    serial = x509.load_pem_x509_certificate(pod.read("vol", "tls.crt")).serial_number
    versions = pod.versions(spc)
    # A rotation poll before the restart, so the kept answers are what the provider serves.
    wait_for(lambda: any(r.get("unchanged") for r in polls_of(stateful, "restarted")), 60, "a rotation poll")
    assert audited.audit_log_path is not None
    audit = AuditLog(Path(audited.audit_log_path))
    audit.take()
    before = len(polls_of(stateful, "restarted"))

    stateful.restart()
    wait_for(
        lambda: len(polls_of(stateful, "restarted")) >= before + 2, 60, "two rotation polls after the restart"
    )
    time.sleep(0.5)  # the audit device writes the response line just before answering
    counts = audit.take()

    assert counts.requests["login"] == 0, counts
    assert counts.requests["issue"] == 0, counts
    assert dict(counts.new) == {}, counts
    assert pod.read("vol", "username") == user
    assert x509.load_pem_x509_certificate(pod.read("vol", "tls.crt")).serial_number == serial
    assert pod.versions(spc) == versions
    first_after = polls_of(stateful, "restarted")[before]
    sources = {record["name"]: record["source"] for record in first_after["objects"]}
    assert sources == {"username": "kept", "password": "kept", "tls.crt": "kept", "api-key": "new"}
    assert postgres.count_roles(user.decode()) == 1
    pod.delete()
