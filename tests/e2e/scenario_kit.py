"""Building blocks of the e2e scenarios: namespaces, service accounts, SecretProviderClasses and pods
as objects of the real API server, and a pod's volume as the driver wrote it.
"""

from __future__ import annotations

import base64
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driver import DriverProcess
from kube_api import KubeApi, wait_for
from kubelet import CSI_DRIVER, Kubelet

__all__ = [
    "MountedPod",
    "container_args",
    "create_namespace",
    "create_service_account",
    "decoded",
    "failed_mount_events",
    "local_args",
    "objects_yaml",
    "pod_manifest",
    "replica_set",
    "secret_provider_class",
    "status_versions",
    "unique",
]

SPC_API = "secrets-store.csi.x-k8s.io/v1"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def objects_yaml(text: str) -> str:
    return textwrap.dedent(text).strip() + "\n"


def create_namespace(api: KubeApi, name: str) -> str:
    api.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def create_service_account(api: KubeApi, namespace: str, name: str) -> str:
    api.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}
    )
    return name


def secret_provider_class(
    api: KubeApi,
    namespace: str,
    name: str,
    parameters: dict[str, str],
    secret_objects: list[dict[str, Any]] | None = None,
    provider: str = "vault",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"provider": provider, "parameters": parameters}
    if secret_objects is not None:
        spec["secretObjects"] = secret_objects
    manifest = {"apiVersion": SPC_API, "kind": "SecretProviderClass",
                "metadata": {"name": name, "namespace": namespace}, "spec": spec}  # fmt: skip
    api.apply(manifest)
    return manifest


def pod_manifest(
    namespace: str,
    name: str,
    service_account: str,
    volumes: dict[str, str],
    node: str,
    owners: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A pod on `node` with one inline CSI volume per (volume name -> SecretProviderClass)."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": {"app": "e2e"}}
    if owners:
        metadata["ownerReferences"] = owners
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "nodeName": node,
            "serviceAccountName": service_account,
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {
                    "name": "app",
                    "image": "registry.k8s.io/e2e-test-images/busybox:1.29-4",
                    "command": ["/bin/sleep", "10000"],
                    "volumeMounts": [
                        {"name": volume, "mountPath": f"/mnt/{volume}", "readOnly": True}
                        for volume in volumes
                    ],
                }
            ],
            "volumes": [
                {
                    "name": volume,
                    "csi": {
                        "driver": CSI_DRIVER,
                        "readOnly": True,
                        "volumeAttributes": {"secretProviderClass": spc},
                    },
                }
                for volume, spc in volumes.items()
            ],
        },
    }


@dataclass
class MountedPod:
    """A pod the kubelet stand-in has published, and its volumes as the driver's namespace shows them."""

    api: KubeApi
    kubelet: Kubelet
    driver: DriverProcess
    namespace: str
    name: str

    @classmethod
    def run(
        cls,
        api: KubeApi,
        kubelet: Kubelet,
        driver: DriverProcess,
        manifest: dict[str, Any],
        timeout: float = 60,
    ) -> MountedPod:
        api.apply(manifest)
        pod = cls(api, kubelet, driver, manifest["metadata"]["namespace"], manifest["metadata"]["name"])
        for volume in manifest["spec"]["volumes"]:
            kubelet.wait_published(pod.namespace, pod.name, volume["name"], timeout)
        return pod

    def target(self, volume: str) -> Path:
        return self.kubelet.volume(self.namespace, self.name, volume).target

    def read(self, volume: str, path: str) -> bytes:
        return self.driver.read(self.target(volume) / path)

    def mode(self, volume: str, path: str) -> int:
        return self.driver.visible(self.target(volume) / "..data" / path).stat().st_mode & 0o777

    def files(self, volume: str) -> list[str]:
        root = self.driver.visible(self.target(volume))
        return sorted(entry.name for entry in root.iterdir() if not entry.name.startswith(".."))

    def status(self, spc: str) -> dict[str, Any]:
        """The SecretProviderClassPodStatus the driver keeps for this pod and class."""
        name = f"{self.name}-{self.namespace}-{spc}"
        return dict(
            self.api.get(f"/apis/{SPC_API}/namespaces/{self.namespace}/secretproviderclasspodstatuses/{name}")
        )

    def versions(self, spc: str) -> dict[str, str]:
        return status_versions(self.status(spc))

    def delete(self) -> None:
        self.api.delete(f"/api/v1/namespaces/{self.namespace}/pods/{self.name}")
        self.kubelet.wait_gone(self.namespace, self.name)


def status_versions(status: dict[str, Any]) -> dict[str, str]:
    """Object id -> version, as a SecretProviderClassPodStatus lists them."""
    return {entry["id"]: entry["version"] for entry in status["status"].get("objects", [])}


def failed_mount_events(
    kubelet: Kubelet, namespace: str, pod: str, contains: str, timeout: float = 60
) -> str:
    """The first FailedMount event message on the pod that contains `contains`."""

    def found() -> str | None:
        for event in kubelet.events(namespace, pod):
            if event["reason"] == "FailedMount" and contains in event["message"]:
                return str(event["message"])
        return None

    return wait_for(found, timeout, f"a FailedMount event on {namespace}/{pod} with {contains!r}")


def decoded(secret: dict[str, Any], key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


def replica_set(api: KubeApi, namespace: str, name: str) -> dict[str, Any]:
    """A ReplicaSet object (nothing runs its controller) and the ownerReference its pods carry."""
    labels = {"app": name}
    created = api.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {"name": "app", "image": "registry.k8s.io/e2e-test-images/busybox:1.29-4"}
                        ]
                    },
                },
            },
        }
    )
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name, "uid": created["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}  # fmt: skip


def local_args(args: list[str], key_file: Path | None = None) -> list[str]:
    """The DaemonSet's arguments with the in-pod paths and ports of this machine."""
    local = []
    for arg in args:
        name = arg.split("=", 1)[0]
        if name == "--endpoint":
            continue  # the harness gives the socket
        if name == "--health-addr":
            arg = "--health-addr=127.0.0.1:0"
        if name == "--hmac-key-file":
            assert key_file is not None
            arg = f"--hmac-key-file={key_file}"
        local.append(arg)
    return local


def container_args(objects: list[dict[str, Any]]) -> list[str]:
    (daemonset,) = [obj for obj in objects if obj["kind"] == "DaemonSet"]
    return list(daemonset["spec"]["template"]["spec"]["containers"][0]["args"])
