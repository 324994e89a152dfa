"""The image, built from the Dockerfile with buildah: non-root, no devkit, and serving the real driver.

See `image` for how it is built and run here without a registry or a container runtime.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PROVIDER_NAMESPACE, E2eVault, ProviderUnderTest, in_cluster_env
from control_plane import ControlPlane
from driver import DriverProcess
from image import BASE_IMAGE, PATH, ImageRun, build_image, image_config, mounted_rootfs, tools_missing
from kube_api import KubeApi, wait_for
from kubelet import Kubelet
from render import RenderedTargets
from scenario_kit import (
    MountedPod,
    container_args,
    create_namespace,
    create_service_account,
    local_args,
    objects_yaml,
    pod_manifest,
    secret_provider_class,
)

from devkit import vault_setup as setup

NS = "image"
NODE = "e2e-node"
USER = "10001:10001"
# What the Dockerfile adds to its base: the provider and its dependencies' wheels.
MAX_ADDED_BYTES = 80 * 1024 * 1024


@pytest.fixture(scope="module")
def image(binaries: dict[str, Path]) -> dict[str, Any]:
    missing = tools_missing()
    if missing:
        message = f"the image tests need {', '.join(missing)} (Debian: apt-get install buildah mmdebstrap)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    build_image()
    return image_config()


def test_the_image_runs_its_entrypoint_as_a_non_root_user(image: dict[str, Any]) -> None:
    """USER 10001:10001 by number, ENTRYPOINT vault-csi-provider with the chart's socket as CMD."""
    assert image["User"] == USER
    assert image["Entrypoint"] == ["vault-csi-provider"]
    assert image["Cmd"] == ["--endpoint=/provider/vault.sock"]
    added = image["size"] - image_config(BASE_IMAGE)["size"]
    assert 0 < added < MAX_ADDED_BYTES, added


def test_the_image_holds_the_provider_and_no_devkit(image: dict[str, Any]) -> None:
    """The provider package and its command are installed; devkit, tests and bench are not."""
    with mounted_rootfs() as root:
        installed = [path for path in root.glob("usr/local/lib/python3*/*-packages/*") if path.is_dir()]
        names = {path.name for path in installed}
        assert "provider" in names
        assert not names & {"devkit", "tests", "bench"}
        assert not list(root.glob("usr/local/lib/python3*/*-packages/provider/devkit"))
        assert (root / "usr/local/bin/vault-csi-provider").is_file()


@pytest.fixture
def image_provider(
    image: dict[str, Any],
    plane: ControlPlane,
    api: KubeApi,
    e2e_vault: E2eVault,
    overlays: RenderedTargets,
    providers_dir: Path,
    provider: ProviderUnderTest,
    tmp_path: Path,
) -> Iterator[ImageRun]:
    """The image in place of the session provider, with the default overlay's arguments and account."""
    objects = overlays["default"]
    (daemonset,) = [obj for obj in objects if obj["kind"] == "DaemonSet"]
    (init,) = daemonset["spec"]["template"]["spec"]["initContainers"]
    sa_dir = plane.service_account_files(PROVIDER_NAMESPACE, "vault-csi-provider", tmp_path / "sa")
    provider.stop()
    try:
        with mounted_rootfs() as root:
            run = ImageRun(root, tmp_path / "image-provider.log")
            env = {
                **in_cluster_env(plane, None),
                "POD_NAMESPACE": PROVIDER_NAMESPACE,
                "PATH": PATH,
            }
            run.start(
                [*local_args(container_args(objects)), "--endpoint=/provider/vault.sock",
                 f"--vault-addr={e2e_vault.address}"],
                providers_dir, sa_dir, env, USER, init["command"],
            )  # fmt: skip
            socket = providers_dir / "vault.sock"
            wait_for(lambda: run.serving(socket, 10001), 30, "the image's provider serving its socket")
            yield run
            assert run.stop() == 0, run.log_tail()
    finally:
        provider.start()


def test_the_image_serves_mounts_through_the_real_driver(
    image_provider: ImageRun,
    providers_dir: Path,
    api: KubeApi,
    kubelet: Kubelet,
    driver: DriverProcess,
    e2e_vault: E2eVault,
) -> None:
    """bats 1 again, with the provider from the image: UID 10001 owns the socket in the node's
    providers directory (group-writable for it by the init container), and the volume is written."""
    stat = providers_dir.stat()
    assert (stat.st_gid, stat.st_mode & 0o070) == (10001, 0o070)
    create_namespace(api, NS)
    create_service_account(api, NS, "app")
    setup.write_policy(e2e_vault.root, "image", 'path "secret/data/image/*" { capabilities = ["read"] }')
    setup.kubernetes_role(e2e_vault.root, "kubernetes", "image", ["app"], [NS], ["image"], ttl="20m")
    e2e_vault.put("image/app", {"value": "served-by-the-image"})
    secret_provider_class(
        api, NS, "from-image",
        {"roleName": "image", "objects": objects_yaml(
            "- objectName: value\n  secretPath: secret/data/image/app\n  secretKey: value\n")},
    )  # fmt: skip
    pod = MountedPod.run(api, kubelet, driver, pod_manifest(NS, "app-0", "app", {"vol": "from-image"}, NODE))
    assert pod.read("vol", "value") == b"served-by-the-image"
    pod.delete()
    time.sleep(0.2)
    assert "code=OK" in image_provider.log.read_text() or '"code": "OK"' in image_provider.log.read_text()
