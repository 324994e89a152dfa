"""What we add to upstream, through the real driver: template objects, format data and files, audit records.

Same stack as the ported suites; the pod's volume is read as the driver wrote it, and the
audit records from the session provider's -audit-log file.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import E2eVault, ProviderUnderTest
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

from devkit import PostgresServer
from devkit import vault_setup as setup

NS = "ours"
NODE = "e2e-node"


@pytest.fixture(scope="module")
def ours(api: KubeApi, e2e_vault: E2eVault, postgres: PostgresServer) -> E2eVault:
    create_namespace(api, NS)
    create_service_account(api, NS, "app")
    root = e2e_vault.root
    setup.write_policy(
        root,
        "ours",
        'path "secret/data/ours/*" { capabilities = ["read"] }\n'
        'path "database/creds/ours" { capabilities = ["read"] }\n'
        'path "sys/internal/ui/mounts/*" { capabilities = ["read"] }',
    )
    setup.kubernetes_role(root, "kubernetes", "ours", ["app"], [NS], ["ours"], ttl="20m")
    setup.enable_database(
        root, "database", postgres.vault_connection_url, postgres.superuser, postgres.password, "ours"
    )
    e2e_vault.put("ours/app", {"username": "app", "password": "s3cr<t>&", "port": 5432})
    return e2e_vault


def mount(api: KubeApi, kubelet: Kubelet, driver: DriverProcess, pod: str, objects: str) -> MountedPod:
    spc = f"{pod}-spc"
    secret_provider_class(api, NS, spc, {"roleName": "ours", "objects": objects_yaml(objects)})
    return MountedPod.run(api, kubelet, driver, pod_manifest(NS, pod, "app", {"vol": spc}, NODE))


def test_templates_render_through_the_driver(
    ours: E2eVault, api: KubeApi, kubelet: Kubelet, driver: DriverProcess, postgres: PostgresServer
) -> None:
    """A .env from a KV secret (Agent's KV v2 path shim) and a database URL sharing the plain
    objects' credential: one lease, and the URL logs in."""
    pod = mount(
        api, kubelet, driver, "templated",
        """
        - objectName: app.env
          template: |
            {{- with secret "secret/ours/app" -}}
            USER={{ .Data.data.username }}
            PASSWORD={{ .Data.data.password }}
            {{- end }}
        - objectName: db-user
          secretPath: database/creds/ours
          secretKey: username
        - objectName: db.url
          template: |
            {{- with secret "database/creds/ours" -}}
            postgresql://{{ .Data.username }}:{{ .Data.password }}@127.0.0.1/postgres
            {{- end }}
        """,
    )  # fmt: skip
    assert pod.read("vol", "app.env") == b"USER=app\nPASSWORD=s3cr<t>&\n"
    user = pod.read("vol", "db-user").decode()
    url = pod.read("vol", "db.url").decode()
    assert url.startswith(f"postgresql://{user}:")
    password = url.split(":", 2)[2].split("@", 1)[0]
    assert postgres.psql("SELECT current_user", login=(user, password)).strip() == user
    pod.delete()


def test_format_data_and_format_files(
    ours: E2eVault, api: KubeApi, kubelet: Kubelet, driver: DriverProcess
) -> None:
    """format: data is the secret as Go JSON; format: files a file per key under the object's name."""
    pod = mount(
        api, kubelet, driver, "formats",
        """
        - objectName: app.json
          secretPath: secret/data/ours/app
          format: data
        - objectName: app
          secretPath: secret/data/ours/app
          format: files
        """,
    )  # fmt: skip
    assert (
        pod.read("vol", "app.json")
        == b'{"password":"s3cr\\u003ct\\u003e\\u0026","port":5432,"username":"app"}'
    )
    assert [pod.read("vol", f"app/{key}") for key in ("password", "port", "username")] == [
        b"s3cr<t>&",
        b"5432",
        b"app",
    ]
    assert sorted(pod.versions("formats-spc")) == ["app", "app.json"]
    pod.delete()


def audit_records(provider: ProviderUnderTest, pod: str) -> list[dict[str, Any]]:
    lines = provider.audit_log.read_text().splitlines()
    return [record for line in lines if (record := json.loads(line))["pod"]["name"] == pod]


def test_audit_records_for_mounts_and_rotation_polls(
    ours: E2eVault, api: KubeApi, kubelet: Kubelet, driver: DriverProcess, provider: ProviderUnderTest
) -> None:
    """The first Mount of a pod is a full record naming its paths; the driver's later polls that
    change nothing are short `unchanged` lines."""
    pod = mount(
        api, kubelet, driver, "audited",
        "- objectName: user\n  secretPath: secret/data/ours/app\n  secretKey: username\n",
    )  # fmt: skip
    records = wait_for(
        lambda: (
            (found := audit_records(provider, "audited")) and any(r.get("unchanged") for r in found) and found
        ),
        60,
        "an unchanged rotation poll in the audit log",
    )
    first = records[0]
    assert first["code"] == "OK"
    assert first["pod"]["namespace"] == NS
    assert first["service_account"] == "app"
    assert first["spc"] == "audited-spc"
    assert [(o["name"], o["path"], o["method"], o["source"]) for o in first["objects"]] == [
        ("user", "/v1/secret/data/ours/app", "GET", "new")
    ]
    assert first["objects"][0]["version"] == pod.versions("audited-spc")["user"]
    later = [record for record in records[1:] if record.get("unchanged")]
    assert later[0]["objects"] == 1
    pod.delete()
