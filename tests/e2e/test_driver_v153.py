"""Driver v1.5.3, the older generation we claim: its own rotation reconciler, not requiresRepublish.

v1.5 polls every mounted volume every --rotation-poll-interval, requesting the pod's tokens
itself (its TokenRequest RBAC) and sending the current object versions; it reads in-cluster
configuration only, which the driver fixture gives it at the fixed in-pod path. The CSIDriver
object says `requiresRepublish: false` while these tests run, as a cluster on that driver has it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import E2eVault, ProviderUnderTest
from control_plane import ControlPlane
from driver import DriverProcess, apply_driver_rbac
from kube_api import KubeApi, wait_for
from kubelet import CSI_DRIVER, Kubelet
from scenario_kit import (
    MountedPod,
    create_namespace,
    create_service_account,
    objects_yaml,
    pod_manifest,
    secret_provider_class,
)

from devkit import vault_setup as setup

NS = "legacy"
NODE = "e2e-node-v153"
CSIDRIVER = f"/apis/storage.k8s.io/v1/csidrivers/{CSI_DRIVER}"


@pytest.fixture(scope="module")
def legacy(
    binaries: dict[str, Path],
    plane: ControlPlane,
    api: KubeApi,
    providers_dir: Path,
    provider: ProviderUnderTest,
    csidriver: dict[str, Any],
    csi: Any,
    e2e_vault: E2eVault,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[DriverProcess, Kubelet]]:
    apply_driver_rbac(plane, "v1.5.3", crds=False)
    api.call("PATCH", CSIDRIVER, {"spec": {"requiresRepublish": False}})
    driver = DriverProcess(
        binaries["driver-v1.5.3"],
        "v1.5.3",
        plane,
        tmp_path_factory.mktemp("driver-v153"),
        providers_dir,
        node=NODE,
    )
    driver.start()
    kubelet = Kubelet(api, driver.socket, tmp_path_factory.mktemp("kubelet-v153"), NODE, csi)
    kubelet.start()
    create_namespace(api, NS)
    create_service_account(api, NS, "app")
    setup.write_policy(e2e_vault.root, "legacy", 'path "secret/data/legacy/*" { capabilities = ["read"] }')
    setup.kubernetes_role(e2e_vault.root, "kubernetes", "legacy", ["app"], [NS], ["legacy"], ttl="20m")
    yield driver, kubelet
    kubelet.stop()
    driver.stop()
    api.call("PATCH", CSIDRIVER, {"spec": {"requiresRepublish": True}})


def test_inline_volume_and_rotation_by_the_drivers_own_reconciler(
    legacy: tuple[DriverProcess, Kubelet], api: KubeApi, e2e_vault: E2eVault
) -> None:
    """vault.bats' inline and rotation tests on driver 1.5: the file and the pod status follow a
    changed secret although nothing republishes the volume."""
    driver, kubelet = legacy
    e2e_vault.put("legacy/rotation", {"foo": "start"})
    secret_provider_class(
        api,
        NS,
        "vault-rotation",
        {"roleName": "legacy", "objects": objects_yaml(
            "- objectName: foo\n  secretPath: secret/data/legacy/rotation\n  secretKey: foo\n")},
    )  # fmt: skip
    pod = MountedPod.run(
        api,
        kubelet,
        driver,
        pod_manifest(NS, "secrets-store-rotation", "app", {"vol": "vault-rotation"}, NODE),
    )
    assert pod.read("vol", "foo") == b"start"
    before = pod.versions("vault-rotation")
    e2e_vault.put("legacy/rotation", {"foo": "rotated"})
    driver.wait_file(pod.target("vol") / "foo", b"rotated", timeout=60)
    wait_for(
        lambda: pod.versions("vault-rotation")["foo"] != before["foo"],
        60,
        "the status to show the new version",
    )
    assert kubelet.volume(NS, "secrets-store-rotation", "vol").published == 1
    assert "rotation" in driver.log_text().lower()
    pod.delete()
