"""The daemonset/ overlays against the real API server and its RBAC.

Every kustomization is rendered with kustomize and admitted by the real API server (a
server-side dry run: validation, defaulting and admission, nothing stored). Then the
provider runs with exactly what each overlay gives it: the container's arguments from the
rendered DaemonSet (local paths for its mounts), and the service account's permissions,
evaluated by the real authorizer. The API server's audit log tells which calls it made.
Mounts go over the provider's socket for a real Pod object, with a token bound to that pod.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    PROVIDER_NAMESPACE,
    E2eVault,
    ProviderUnderTest,
    in_cluster_env,
)
from control_plane import ControlPlane
from kube_api import ApiError, KubeApi
from render import RenderedTargets
from scenario_kit import (
    container_args,
    create_namespace,
    create_service_account,
    local_args,
    objects_yaml,
    pod_manifest,
)

from devkit import vault_setup as setup
from provider.tools.driver import PodInfo, ProviderCallError, ProviderClient, build_mount_payload

NS = "overlays"
PROVIDER_ACCOUNT = f"system:serviceaccount:{PROVIDER_NAMESPACE}:vault-csi-provider"
PARAMETERS = {
    "roleName": "overlays",
    "objects": objects_yaml(
        "- objectName: value\n  secretPath: secret/data/overlays/app\n  secretKey: value\n"
    ),
}


@pytest.fixture(scope="module")
def pod(api: KubeApi, e2e_vault: E2eVault, provider: ProviderUnderTest) -> PodInfo:
    """A Pod object (on a node nobody serves) whose service account may read overlays/app."""
    create_namespace(api, NS)
    create_service_account(api, NS, "app")
    setup.write_policy(
        e2e_vault.root, "overlays", 'path "secret/data/overlays/*" { capabilities = ["read"] }'
    )
    setup.kubernetes_role(e2e_vault.root, "kubernetes", "overlays", ["app"], [NS], ["overlays"], ttl="20m")
    e2e_vault.put("overlays/app", {"value": "from-vault"})
    created = api.apply(pod_manifest(NS, "app-0", "app", {"vol": "unused"}, "no-such-node"))
    return PodInfo(NS, "app-0", created["metadata"]["uid"], "app")


def mount(process: ProviderUnderTest, api: KubeApi, pod: PodInfo, with_token: bool) -> Any:
    """A Mount as the driver sends it for `pod`; the kubelet's token only `with_token`."""
    tokens = None
    if with_token:
        token = api.service_account_token(NS, "app", ["vault"], 600, pod=(pod.name, pod.uid))
        expires = (datetime.now(UTC) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
        tokens = {"vault": (token, expires)}
    attributes, secrets = build_mount_payload(PARAMETERS, spc_name="overlays", pod=pod, tokens=tokens)
    assert process.process is not None
    with ProviderClient(process.socket, timeout_seconds=30) as client:
        return client.mount(attributes, secrets, "/tmp/unused-target")


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[ProviderUnderTest]]:
    processes: list[ProviderUnderTest] = []
    yield processes
    for process in processes:
        process.stop()


def test_every_kustomization_is_admitted_by_the_real_api_server(
    api: KubeApi, overlays: RenderedTargets, provider: ProviderUnderTest
) -> None:
    """base and the three overlays: every object passes the API server's own validation (the
    namespace exists: the session provider's default overlay made it)."""
    for name in overlays:
        for obj in overlays[name]:
            answered = api.apply(obj, dry_run=True)
            assert answered["kind"] == obj["kind"], (name, obj["kind"])


def test_zero_permission_needs_no_token_and_makes_no_api_call(
    plane: ControlPlane,
    api: KubeApi,
    e2e_vault: E2eVault,
    overlays: RenderedTargets,
    pod: PodInfo,
    tmp_path: Path,
    started: list[ProviderUnderTest],
) -> None:
    """zero-permission: no token is mounted (automountServiceAccountToken: false), the HMAC key is a
    file, and the provider never calls the API server, at start or on a Mount."""
    objects = overlays["zero-permission"]
    account = next(obj for obj in objects if obj["kind"] == "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    key = tmp_path / "hmac-key"
    key.write_bytes(b"k" * 32)
    no_token = tmp_path / "serviceaccount"
    no_token.mkdir()
    before = len(plane.calls_by("system:anonymous")) + len(plane.calls_by(PROVIDER_ACCOUNT))
    process = ProviderUnderTest(
        tmp_path / "vault.sock",
        e2e_vault.address,
        in_cluster_env(plane, no_token),
        tmp_path / "provider.log",
        tuple(local_args(container_args(objects), key)),
    ).start()
    started.append(process)
    result = mount(process, api, pod, with_token=True)
    assert [(f.path, f.contents) for f in result.files] == [("value", b"from-vault")]
    time.sleep(1)  # the audit log is written as requests finish
    after = len(plane.calls_by("system:anonymous")) + len(plane.calls_by(PROVIDER_ACCOUNT))
    assert after == before


def test_default_may_get_and_create_its_key_secret_and_nothing_more(
    plane: ControlPlane,
    api: KubeApi,
    overlays: RenderedTargets,
    provider: ProviderUnderTest,
    tmp_path: Path,
) -> None:
    """default: the Role gets the one Secret by name and creates Secrets; the real authorizer
    refuses every other read. The session provider, which runs with this overlay and has served
    every Mount of the suites before, only ever got and created its key Secret."""
    calls = plane.calls_by(PROVIDER_ACCOUNT)
    made = {(call["verb"], call["objectRef"]["resource"], call["objectRef"].get("name")) for call in calls}
    assert made <= {
        ("get", "secrets", "vault-csi-provider-hmac-key"),
        ("create", "secrets", "vault-csi-provider-hmac-key"),
    }
    assert calls, "the session provider read its HMAC key Secret at start"
    api.apply_all(overlays["default"])
    token = (
        plane.service_account_files(PROVIDER_NAMESPACE, "vault-csi-provider", tmp_path / "sa") / "token"
    ).read_text()
    as_provider = api.as_token(token)
    secrets = f"/api/v1/namespaces/{PROVIDER_NAMESPACE}/secrets"
    assert (
        as_provider.get(f"{secrets}/vault-csi-provider-hmac-key")["metadata"]["name"]
        == "vault-csi-provider-hmac-key"
    )
    for forbidden in (secrets, f"{secrets}/another", f"/api/v1/namespaces/{NS}/secrets"):
        with pytest.raises(ApiError) as refused:
            as_provider.get(forbidden)
        assert refused.value.status == 403


def test_token_request_overlay_lets_the_fallback_request_a_pod_bound_token(
    plane: ControlPlane,
    api: KubeApi,
    e2e_vault: E2eVault,
    overlays: RenderedTargets,
    pod: PodInfo,
    tmp_path: Path,
    started: list[ProviderUnderTest],
) -> None:
    """token-request: with its ClusterRole a Mount without a driver token logs in with a token the
    provider requested for the pod; without the binding the error names the missing permission."""
    objects = overlays["token-request"]
    api.apply_all(objects)
    sa_dir = plane.service_account_files(PROVIDER_NAMESPACE, "vault-csi-provider", tmp_path / "sa")
    process = ProviderUnderTest(
        tmp_path / "vault.sock",
        e2e_vault.address,
        in_cluster_env(plane, sa_dir),
        tmp_path / "provider.log",
        tuple(local_args(container_args(objects))),
    ).start()
    started.append(process)
    try:
        result = mount(process, api, pod, with_token=False)
        assert [(f.path, f.contents) for f in result.files] == [("value", b"from-vault")]
        requested = [
            c for c in plane.calls_by(PROVIDER_ACCOUNT) if c["objectRef"].get("subresource") == "token"
        ]
        assert [
            (c["objectRef"]["namespace"], c["objectRef"]["name"], c["responseStatus"]["code"])
            for c in requested
        ] == [(NS, "app", 201)]

        binding = next(obj for obj in objects if obj["kind"] == "ClusterRoleBinding")
        api.delete(api.path_of(binding))
        time.sleep(1)
        with pytest.raises(ProviderCallError) as refused:
            mount(process, api, pod, with_token=False)
        assert refused.value.code.name == "PERMISSION_DENIED"
        assert refused.value.message.startswith(
            "the driver passed no token for audience 'vault' and the TokenRequest fallback failed: "
            f"cannot request a token for {NS}/app: the provider's service account needs RBAC permission to "
            f"create serviceaccounts/token in namespace {NS} (403)"
        )
    finally:
        for obj in objects:
            if obj["kind"] in ("ClusterRole", "ClusterRoleBinding"):
                api.delete(api.path_of(obj))
        api.apply_all(overlays["default"])
