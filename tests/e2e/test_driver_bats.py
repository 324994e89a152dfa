"""The Secrets Store CSI driver's own Vault tests (test/bats/vault.bats, v1.6.0), ported.

Each test names the bats test it comes from. The set-up follows the bats file's: a role
`csi` for the default service account, KV v2 secrets foo (bar=hello) and foo1
(bar1=hello1), and its SecretProviderClasses (tests/vault/*.yaml). Deployments become a
ReplicaSet object and its pods (nothing here runs the ReplicaSet controller; the garbage
collector does run, so owners and deletions behave as in a cluster). `kubectl exec cat`
reads become reads of the volume as the driver wrote it; the environment-variable checks
need a container runtime and are left out.
"""

from __future__ import annotations

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
    decoded,
    failed_mount_events,
    objects_yaml,
    pod_manifest,
    replica_set,
    secret_provider_class,
)

from devkit import vault_setup as setup

NODE = "e2e-node"
OBJECTS = objects_yaml(
    """
    - secretPath: "secret/data/foo"
      objectName: "bar"
      secretKey: "bar"
    - secretPath: "secret/data/foo1"
      objectName: "bar1"
      secretKey: "bar1"
    """
)
SYNC_OBJECTS = OBJECTS + objects_yaml(
    """
    - secretPath: "secret/data/foo"
      objectName: "nested/bar"
      secretKey: "bar"
    """
)


def sync_class(secret_name: str = "foosecret") -> list[dict[str, Any]]:
    return [
        {
            "secretName": secret_name,
            "type": "Opaque",
            "labels": {"environment": "test"},
            "annotations": {"kubed.appscode.com/sync": "app=test"},
            "data": [
                {"objectName": "bar", "key": "pwd"},
                {"objectName": "bar1", "key": "username"},
                {"objectName": "nested/bar", "key": "nested"},
            ],
        }
    ]


@pytest.fixture(scope="module")
def bats(api: KubeApi, e2e_vault: E2eVault, kubelet: Kubelet) -> E2eVault:
    """setup vault: the `csi` role for the default service accounts, the secrets, the classes."""
    setup.write_policy(e2e_vault.root, "csi", 'path "secret/data/*" { capabilities = ["read"] }')
    setup.kubernetes_role(e2e_vault.root, "kubernetes", "csi", ["default"], ["*"], ["csi"], ttl="20m")
    e2e_vault.put("foo", {"bar": "hello"})
    e2e_vault.put("foo1", {"bar1": "hello1"})
    for namespace in ("default", "test-ns"):
        create_namespace(api, namespace)
        create_service_account(api, namespace, "default")
    secret_provider_class(api, "default", "vault-foo", {"roleName": "csi", "objects": OBJECTS})
    secret_provider_class(
        api,
        "default",
        "vault-foo-sync",
        {"roleName": "csi", "objects": SYNC_OBJECTS},
        secret_objects=sync_class(),
    )
    secret_provider_class(
        api,
        "test-ns",
        "vault-foo-sync",
        {"roleName": "csi", "objects": SYNC_OBJECTS},
        secret_objects=sync_class(),
    )
    for index in (0, 1):
        secret_provider_class(
            api,
            "default",
            f"vault-foo-sync-{index}",
            {"roleName": "csi", "objects": OBJECTS},
            secret_objects=[
                {"secretName": f"foosecret-{index}", "type": "Opaque",
                 "data": [{"objectName": "bar", "key": "pwd"}, {"objectName": "bar1", "key": "username"}]}
            ],
        )  # fmt: skip
    return e2e_vault


def run(
    api: KubeApi, kubelet: Kubelet, driver: DriverProcess, namespace: str, name: str, volumes: dict[str, str],
    **kwargs: Any,
) -> MountedPod:  # fmt: skip
    return MountedPod.run(
        api, kubelet, driver, pod_manifest(namespace, name, "default", volumes, NODE, **kwargs)
    )


def test_csi_inline_volume_test_with_pod_portability(
    bats: E2eVault, api: KubeApi, kubelet: Kubelet, driver: DriverProcess
) -> None:
    """bats: 'CSI inline volume test with pod portability', '- read vault secret from pod' and
    '- unmount succeeds' (the tmpfs goes, and the driver logs no failed unmount)."""
    pod = run(api, kubelet, driver, "default", "secrets-store-inline", {"secrets-store-inline": "vault-foo"})
    assert pod.read("secrets-store-inline", "bar") == b"hello"
    assert pod.read("secrets-store-inline", "bar1") == b"hello1"
    target = driver.visible(pod.target("secrets-store-inline"))
    pod.delete()
    assert not target.exists()
    assert "failed to clean and unmount target path" not in driver.log_text()


def test_csi_inline_volume_test_with_pod_portability_rotation_succeeds(
    bats: E2eVault, api: KubeApi, kubelet: Kubelet, driver: DriverProcess
) -> None:
    """bats: '- rotation succeeds': a changed secret reaches the file and the pod status versions
    (driver 1.6: the kubelet republishes, the driver asks the provider once its poll interval passed)."""
    bats.put("rotation", {"foo": "start"})
    secret_provider_class(
        api,
        "default",
        "vault-rotation",
        {"roleName": "csi", "objects": objects_yaml('- objectName: foo\n  secretPath: secret/data/rotation\n'
                                                    '  secretKey: foo\n')},
    )  # fmt: skip
    pod = run(
        api, kubelet, driver, "default", "secrets-store-rotation", {"secrets-store-inline": "vault-rotation"}
    )
    assert pod.read("secrets-store-inline", "foo") == b"start"
    before = pod.versions("vault-rotation")
    bats.put("rotation", {"foo": "rotated"})
    driver.wait_file(pod.target("secrets-store-inline") / "foo", b"rotated", timeout=60)
    after = wait_for(
        lambda: (versions := pod.versions("vault-rotation"))["foo"] != before["foo"] and versions,
        60,
        "the pod status to show the new version",
    )
    assert after.keys() == before.keys() == {"foo"}
    pod.delete()


def test_sync_with_k8s_secrets(bats: E2eVault, api: KubeApi, kubelet: Kubelet, driver: DriverProcess) -> None:
    """bats: 'Sync with K8s secrets - create deployment', '- read secret from pod, read K8s secret,
    ..., check secret ownerReferences with multiple owners' and '- delete deployment, check secret is
    deleted'."""
    owners = [
        replica_set(api, "default", "busybox-deployment"),
        replica_set(api, "default", "busybox-deployment-two"),
    ]
    pods = [
        run(api, kubelet, driver, "default", f"busybox-{index}", {"secrets-store-inline": "vault-foo-sync"},
            owners=[owner])
        for index, owner in enumerate(owners)
    ]  # fmt: skip
    for pod in pods:
        assert pod.read("secrets-store-inline", "bar") == b"hello"
        assert pod.read("secrets-store-inline", "bar1") == b"hello1"
        assert pod.read("secrets-store-inline", "nested/bar") == b"hello"
    path = "/api/v1/namespaces/default/secrets/foosecret"
    secret = wait_for(lambda: api.get(path), 60, "foosecret synced")
    assert decoded(secret, "pwd") == "hello"
    assert decoded(secret, "nested") == "hello"
    assert decoded(secret, "username") == "hello1"
    assert secret["metadata"]["labels"]["environment"] == "test"
    assert secret["metadata"]["annotations"]["kubed.appscode.com/sync"] == "app=test"
    assert secret["metadata"]["labels"]["secrets-store.csi.k8s.io/managed"] == "true"
    owner_count(api, path, 2)

    api.delete("/apis/apps/v1/namespaces/default/replicasets/busybox-deployment", propagation="Background")
    kubelet.wait_gone("default", "busybox-0")
    owner_count(api, path, 1)
    api.delete(
        "/apis/apps/v1/namespaces/default/replicasets/busybox-deployment-two", propagation="Background"
    )
    wait_for(lambda: not api.exists(path), 90, "foosecret deleted with its last owner")


def owner_count(api: KubeApi, path: str, count: int) -> None:
    wait_for(
        lambda: len(api.get(path)["metadata"].get("ownerReferences", [])) == count,
        90,
        f"{path} to have {count} owner(s)",
    )


def test_namespaced_scope_secretproviderclass(
    bats: E2eVault, api: KubeApi, kubelet: Kubelet, driver: DriverProcess
) -> None:
    """bats: 'Test Namespaced scope SecretProviderClass - create deployment', '- Sync with K8s secrets
    - read secret from pod, read K8s secret, ..., check secret ownerReferences' and '- delete deployment,
    check secret deleted'."""
    owner = replica_set(api, "test-ns", "busybox-deployment")
    pod = run(
        api,
        kubelet,
        driver,
        "test-ns",
        "busybox-0",
        {"secrets-store-inline": "vault-foo-sync"},
        owners=[owner],
    )
    assert pod.read("secrets-store-inline", "bar") == b"hello"
    assert pod.read("secrets-store-inline", "bar1") == b"hello1"
    path = "/api/v1/namespaces/test-ns/secrets/foosecret"
    assert decoded(wait_for(lambda: api.get(path), 60, "foosecret in test-ns"), "pwd") == "hello"
    owner_count(api, path, 1)
    api.delete("/apis/apps/v1/namespaces/test-ns/replicasets/busybox-deployment", propagation="Background")
    wait_for(lambda: not api.exists(path), 90, "foosecret in test-ns deleted")


def test_namespaced_scope_should_fail_when_no_secret_provider_class_in_same_namespace(
    bats: E2eVault, api: KubeApi, kubelet: Kubelet
) -> None:
    """bats: 'Test Namespaced scope SecretProviderClass - Should fail when no secret provider class in
    same namespace': the FailedMount event names the class the pod's namespace lacks."""
    namespace = create_namespace(api, "negative-test-ns")
    create_service_account(api, namespace, "default")
    api.apply(
        pod_manifest(namespace, "busybox-0", "default", {"secrets-store-inline": "vault-foo-sync"}, NODE)
    )
    message = failed_mount_events(kubelet, namespace, "busybox-0", "failed to get secretproviderclass")
    assert "failed to get secretproviderclass negative-test-ns/vault-foo-sync" in message
    assert "not found" in message
    api.delete(f"/api/v1/namespaces/{namespace}/pods/busybox-0")
    kubelet.wait_gone(namespace, "busybox-0")


def test_csi_inline_volume_test_with_multiple_secret_provider_class(
    bats: E2eVault, api: KubeApi, kubelet: Kubelet, driver: DriverProcess
) -> None:
    """bats: 'deploy multiple vault secretproviderclass crd', 'deploy pod with multiple secret provider
    class' and 'CSI inline volume test with multiple secret provider class'."""
    pod = run(
        api, kubelet, driver, "default", "secrets-store-inline-multiple-crd",
        {"secrets-store-0": "vault-foo-sync-0", "secrets-store-1": "vault-foo-sync-1"},
    )  # fmt: skip
    for index in (0, 1):
        volume = f"secrets-store-{index}"
        assert pod.read(volume, "bar") == b"hello"
        assert pod.read(volume, "bar1") == b"hello1"
        path = f"/api/v1/namespaces/default/secrets/foosecret-{index}"
        assert decoded(wait_for(lambda p=path: api.get(p), 60, f"foosecret-{index}"), "pwd") == "hello"
        owner_count(api, path, 1)
    pod.delete()
