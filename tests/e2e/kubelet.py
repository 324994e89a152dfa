"""A kubelet stand-in: only what the kubelet does for a pod's inline CSI volume of our driver.

For each Pod object bound to its node (tests create them with `spec.nodeName`), it
- asks TokenRequest for a token bound to the pod for every audience in the CSIDriver's
  `tokenRequests` (reusing it, as the kubelet's token manager does, until 80% of its
  lifetime has passed), and calls NodePublishVolume with a kubelet-shaped target path
  (`<root>/pods/<uid>/volumes/kubernetes.io~csi/<volume>/mount`, its parent created, the
  directory itself left for the driver) and the volume context the kubelet sends with
  `podInfoOnMount` (pod name, namespace, uid, service account, `ephemeral`, the tokens);
- records a failure as the kubelet does, a `FailedMount` Warning event on the pod, and
  tries again on its next pass;
- calls NodePublishVolume again on every pass while the CSIDriver says
  `requiresRepublish` (the kubelet does so about once a minute; here every pass);
- calls NodeUnpublishVolume when the pod is being deleted, then removes the Pod object
  (the kubelet's confirmation of a graceful deletion).

The CSI stubs are generated at session start from the CSI spec's own csi.proto (v1.6.0,
from the Go module cache), never committed.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
from grpc_tools import protoc
from kube_api import ApiError, KubeApi, wait_for

__all__ = ["CSI_DRIVER", "Kubelet", "Volume", "csi_stubs"]

CSI_DRIVER = "secrets-store.csi.k8s.io"
CSI_SPEC = "github.com/container-storage-interface/spec@v1.6.0"
TOKEN_SECONDS = 3600
# The kubelet hands out the same token until this share of its lifetime has passed.
TOKEN_REUSE_SHARE = 0.8

log = logging.getLogger("e2e.kubelet")


def csi_stubs(out: Path) -> tuple[ModuleType, ModuleType]:
    """csi_pb2 and csi_pb2_grpc, generated from the CSI spec module's csi.proto into `out`."""
    done = subprocess.run(
        ["go", "mod", "download", "-json", CSI_SPEC], capture_output=True, text=True, check=True
    )
    spec_dir = json.loads(done.stdout)["Dir"]
    include = Path(protoc.__file__).parent / "_proto"
    out.mkdir(parents=True, exist_ok=True)
    code = protoc.main(
        [
            "protoc",
            f"-I{spec_dir}",
            f"-I{include}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            "csi.proto",
        ]
    )
    if code != 0:
        raise RuntimeError(f"protoc failed on {spec_dir}/csi.proto ({code})")
    sys.path.insert(0, str(out))
    return importlib.import_module("csi_pb2"), importlib.import_module("csi_pb2_grpc")


@dataclass
class Volume:
    """One CSI volume of one pod, as the kubelet tracks it."""

    namespace: str
    pod: str
    uid: str
    name: str
    service_account: str
    attributes: dict[str, str]
    target: Path
    published: int = 0  # successful NodePublishVolume calls
    failures: list[str] = field(default_factory=list)

    @property
    def volume_id(self) -> str:
        # The kubelet's handle for an inline volume: csi-<sha256 of pod uid + volume name>.
        return "csi-" + hashlib.sha256(f"{self.uid}{self.name}".encode()).hexdigest()


class Kubelet:
    def __init__(
        self, api: KubeApi, driver_socket: Path, root: Path, node: str, csi: tuple[ModuleType, ModuleType]
    ) -> None:
        self.api = api
        self.root = root
        self.node = node
        self._pb, pb_grpc = csi
        self._channel = grpc.insecure_channel(f"unix://{driver_socket}")
        self._node = pb_grpc.NodeStub(self._channel)
        self.volumes: dict[tuple[str, str, str], Volume] = {}
        # (namespace, service account, audience, pod uid, seconds) -> (token, expiry text, reuse until).
        self._issued: dict[tuple[str, str, str, str, int], tuple[str, str, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kubelet", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        for volume in list(self.volumes.values()):
            self._unpublish(volume)
        self._channel.close()

    # --- what tests ask -------------------------------------------------------------------------

    def volume(self, namespace: str, pod: str, name: str) -> Volume:
        with self._lock:
            return self.volumes[(namespace, pod, name)]

    def wait_published(self, namespace: str, pod: str, name: str, timeout: float = 60) -> Volume:
        def published() -> Volume | None:
            with self._lock:
                volume = self.volumes.get((namespace, pod, name))
            return volume if volume is not None and volume.published else None

        return wait_for(published, timeout, f"volume {name} of pod {namespace}/{pod} published")

    def wait_gone(self, namespace: str, pod: str, timeout: float = 60) -> None:
        def gone() -> bool:
            with self._lock:
                held = any(key[:2] == (namespace, pod) for key in self.volumes)
            return not held and not self.api.exists(f"/api/v1/namespaces/{namespace}/pods/{pod}")

        wait_for(gone, timeout, f"pod {namespace}/{pod} unpublished and removed")

    def events(self, namespace: str, pod: str) -> list[dict[str, Any]]:
        listed = self.api.get(
            f"/api/v1/namespaces/{namespace}/events", fieldSelector=f"involvedObject.name={pod}"
        )
        return list(listed["items"])

    # --- the loop -------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self._pass()
            except Exception:
                log.exception("kubelet pass failed")

    def _pass(self) -> None:
        csidriver = self.api.get(f"/apis/storage.k8s.io/v1/csidrivers/{CSI_DRIVER}")["spec"]
        pods = self.api.get("/api/v1/pods", fieldSelector=f"spec.nodeName={self.node}")["items"]
        present = set()
        for pod in pods:
            meta = pod["metadata"]
            present.add((meta["namespace"], meta["name"]))
            if meta.get("deletionTimestamp"):
                self._remove(pod)
                continue
            for volume in self._csi_volumes(pod):
                if not volume.published or csidriver.get("requiresRepublish"):
                    self._publish(volume, pod, csidriver)
        # Pods deleted outright (grace period 0) still leave their volumes to clean up.
        with self._lock:
            stale = [v for key, v in self.volumes.items() if key[:2] not in present]
        for volume in stale:
            self._unpublish(volume)

    def _csi_volumes(self, pod: dict[str, Any]) -> list[Volume]:
        meta, spec = pod["metadata"], pod["spec"]
        found = []
        for entry in spec.get("volumes", []):
            csi = entry.get("csi")
            if not csi or csi.get("driver") != CSI_DRIVER:
                continue
            key = (meta["namespace"], meta["name"], entry["name"])
            with self._lock:
                if key not in self.volumes:
                    target = (
                        self.root
                        / "pods"
                        / meta["uid"]
                        / "volumes"
                        / "kubernetes.io~csi"
                        / entry["name"]
                        / "mount"
                    )
                    # The kubelet creates the parent only: the driver reads an existing target's
                    # mtime as its last rotation.
                    target.parent.mkdir(parents=True, exist_ok=True)
                    self.volumes[key] = Volume(
                        meta["namespace"],
                        meta["name"],
                        meta["uid"],
                        entry["name"],
                        spec.get("serviceAccountName", "default"),
                        dict(csi.get("volumeAttributes", {})),
                        target,
                    )
                found.append(self.volumes[key])
        return found

    def _publish(self, volume: Volume, pod: dict[str, Any], csidriver: dict[str, Any]) -> None:
        context = {
            **volume.attributes,
            "csi.storage.k8s.io/ephemeral": "true",
        }
        if csidriver.get("podInfoOnMount"):
            context.update(
                {
                    "csi.storage.k8s.io/pod.name": volume.pod,
                    "csi.storage.k8s.io/pod.namespace": volume.namespace,
                    "csi.storage.k8s.io/pod.uid": volume.uid,
                    "csi.storage.k8s.io/serviceAccount.name": volume.service_account,
                }
            )
        requests_ = csidriver.get("tokenRequests") or []
        if requests_:
            context["csi.storage.k8s.io/serviceAccount.tokens"] = json.dumps(self._tokens(volume, requests_))
        pb = self._pb
        request = pb.NodePublishVolumeRequest(
            volume_id=volume.volume_id,
            target_path=str(volume.target),
            volume_capability=pb.VolumeCapability(
                mount=pb.VolumeCapability.MountVolume(),
                access_mode=pb.VolumeCapability.AccessMode(
                    mode=pb.VolumeCapability.AccessMode.SINGLE_NODE_READER_ONLY
                ),
            ),
            readonly=True,
            volume_context=context,
        )
        try:
            self._node.NodePublishVolume(request, timeout=120)
        except grpc.RpcError as exc:
            message = (
                f'MountVolume.SetUp failed for volume "{volume.name}" : '
                f"rpc error: code = {exc.code().name.title().replace('_', '')} desc = {exc.details()}"
            )
            volume.failures.append(message)
            self._event(pod, message)
            return
        volume.published += 1

    def _tokens(self, volume: Volume, requests_: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
        tokens = {}
        for entry in requests_:
            audience = entry.get("audience", "")
            seconds = int(entry.get("expirationSeconds") or TOKEN_SECONDS)
            key = (volume.namespace, volume.service_account, audience, volume.uid, seconds)
            issued = self._issued.get(key)
            if issued is None or time.monotonic() >= issued[2]:
                token = self.api.service_account_token(
                    volume.namespace,
                    volume.service_account,
                    [audience] if audience else [],
                    seconds,
                    pod=(volume.pod, volume.uid),
                )
                expires = (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
                issued = self._issued[key] = (token, expires, time.monotonic() + seconds * TOKEN_REUSE_SHARE)
            tokens[audience] = {"token": issued[0], "expirationTimestamp": issued[1]}
        return tokens

    def _event(self, pod: dict[str, Any], message: str) -> None:
        meta = pod["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            self.api.call(
                "POST",
                f"/api/v1/namespaces/{meta['namespace']}/events",
                {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
                    "involvedObject": {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "namespace": meta["namespace"],
                        "name": meta["name"],
                        "uid": meta["uid"],
                    },
                    "reason": "FailedMount",
                    "message": message,
                    "type": "Warning",
                    "source": {"component": "kubelet", "host": self.node},
                    "firstTimestamp": now,
                    "lastTimestamp": now,
                    "count": 1,
                },
            )
        except ApiError:
            log.exception("could not record an event")

    def _remove(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        with self._lock:
            mine = [v for key, v in self.volumes.items() if key[:2] == (meta["namespace"], meta["name"])]
        for volume in mine:
            self._unpublish(volume)
        self.api.delete(f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}", grace_seconds=0)

    def _unpublish(self, volume: Volume) -> None:
        request = self._pb.NodeUnpublishVolumeRequest(
            volume_id=volume.volume_id, target_path=str(volume.target)
        )
        try:
            self._node.NodeUnpublishVolume(request, timeout=60)
        except grpc.RpcError as exc:
            log.warning("NodeUnpublishVolume of %s failed: %s", volume.target, exc.details())
            return
        with self._lock:
            self.volumes.pop((volume.namespace, volume.pod, volume.name), None)
