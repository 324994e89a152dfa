"""credentialScope: serviceAccount through the real driver: replicas of a workload share one credential.

Upstream gives every replica its own database user (its issue #149), so a Secret synced
from the volumes flips between the replicas' values on each rotation. Here the replicas
of one ReplicaSet on the node mount one kept lease, the synced Secret holds that
credential, and the driver's rotation polls change nothing.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from conftest import E2eVault
from driver import DriverProcess
from kube_api import KubeApi, wait_for
from kubelet import Kubelet
from scenario_kit import (
    MountedPod,
    create_namespace,
    create_service_account,
    objects_yaml,
    pod_manifest,
    replica_set,
    secret_provider_class,
)

from devkit import PostgresServer
from devkit import vault_setup as setup

NS = "shared"
NODE = "e2e-node"
DB_MOUNT = "shared-db"
REPLICAS = 5
OBJECTS = objects_yaml(
    f"""
    - objectName: username
      secretPath: {DB_MOUNT}/creds/web
      secretKey: username
    - objectName: password
      secretPath: {DB_MOUNT}/creds/web
      secretKey: password
    """
)


@pytest.fixture(scope="module")
def shared(api: KubeApi, e2e_vault: E2eVault, postgres: PostgresServer) -> E2eVault:
    create_namespace(api, NS)
    create_service_account(api, NS, "web")
    root = e2e_vault.root
    setup.write_policy(root, "shared", f'path "{DB_MOUNT}/creds/web" {{ capabilities = ["read"] }}')
    setup.kubernetes_role(root, "kubernetes", "shared", ["web"], [NS], ["shared"], ttl="20m")
    setup.enable_database(
        root, DB_MOUNT, postgres.vault_connection_url, postgres.superuser, postgres.password, "web"
    )
    return e2e_vault


def leases(root: Any) -> list[str]:
    listed = root.adapter.list(f"/v1/sys/leases/lookup/{DB_MOUNT}/creds/web/")
    return list(listed["data"]["keys"]) if listed else []


def secret_value(api: KubeApi, name: str, key: str) -> str:
    secret = api.get(f"/api/v1/namespaces/{NS}/secrets/{name}")
    return base64.b64decode(secret["data"][key]).decode()


def test_replicas_of_one_service_account_share_one_database_lease(
    shared: E2eVault, api: KubeApi, kubelet: Kubelet, driver: DriverProcess, postgres: PostgresServer
) -> None:
    """Five replicas: one PostgreSQL user in every volume and in the synced Secret, one lease in
    OpenBao, unchanged through the driver's rotation polls."""
    secret_provider_class(
        api,
        NS,
        "web-db",
        {"roleName": "shared", "objects": OBJECTS, "credentialScope": "serviceAccount"},
        secret_objects=[
            {
                "secretName": "web-db",
                "type": "Opaque",
                "data": [{"objectName": "username", "key": "username"}],
            }
        ],
    )
    owner = replica_set(api, NS, "web")
    pods = [
        MountedPod.run(
            api, kubelet, driver, pod_manifest(NS, f"web-{i}", "web", {"db": "web-db"}, NODE, [owner])
        )
        for i in range(REPLICAS)
    ]
    users = {pod.read("db", "username").decode() for pod in pods}
    assert len(users) == 1
    (user,) = users
    password = pods[0].read("db", "password").decode()
    assert postgres.psql("SELECT current_user", login=(user, password)).strip() == user
    assert len(leases(shared.root)) == 1
    assert wait_for(lambda: secret_value(api, "web-db", "username"), 60, "the synced Secret") == user

    time.sleep(3 * driver.rotation_poll_seconds)  # a few rotation polls of every volume
    assert {pod.read("db", "username").decode() for pod in pods} == {user}
    assert {tuple(sorted(pod.versions("web-db").items())) for pod in pods} == {
        tuple(sorted(pods[0].versions("web-db").items()))
    }
    assert len(leases(shared.root)) == 1
    assert secret_value(api, "web-db", "username") == user
    for pod in pods:
        pod.delete()
