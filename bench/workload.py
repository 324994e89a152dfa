"""Pods and their Mounts, made and sent the way the Secrets Store CSI driver does.

A pod gets one service-account token (audience `vault`) minted when it is created and
reused on every later Mount, as the kubelet reuses a token until most of its lifetime
has passed. `attributes` and `secrets` come from `provider.driver.build_mount_payload`;
the call goes over the unix socket through `provider.driver.ProviderClient`, which also
applies the driver's checks to the answer. With a volume directory, the files are then
written with the driver's atomic writer (outside the timed part), which tells whether
the volume content changed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import layout
from devkit import ServiceAccountTokenIssuer
from provider.tools.driver import (
    PodInfo,
    ProviderCallError,
    ProviderClient,
    build_mount_payload,
    write_payloads,
)

__all__ = ["Driver", "MountSample", "Pod", "PodFactory"]

AUDIENCE = "vault"
SPC_NAME = "bench-secrets"
TOKEN_SECONDS = 3600
MOUNT_TIMEOUT_SECONDS = 60.0
_MAX_ERROR_CHARS = 240


@dataclass(frozen=True)
class Pod:
    """One pod's identity and the exact request strings the driver would send for its volume."""

    info: PodInfo
    attributes: str = field(repr=False)
    secrets: str = field(repr=False)
    target_path: str


@dataclass(frozen=True)
class MountSample:
    """One Mount as the driver saw it: perf_counter start and end, and the error if it failed."""

    start: float
    end: float
    error: str | None = None
    changed: bool | None = None  # the volume content changed (only when written)
    versions: tuple[tuple[str, str], ...] = ()

    @property
    def seconds(self) -> float:
        return self.end - self.start


class PodFactory:
    """Makes pods whose SecretProviderClass reads a given object list; tokens come from `issuer`."""

    def __init__(self, issuer: ServiceAccountTokenIssuer) -> None:
        self._issuer = issuer

    def pod(
        self,
        namespace: str,
        name: str,
        service_account: str,
        objects: list[dict[str, Any]],
        volume: Path | None,
        extra_parameters: Mapping[str, str] | None = None,
    ) -> Pod:
        """A pod reading `objects`; `extra_parameters` are further SecretProviderClass parameters."""
        uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench/pod/{namespace}/{name}"))
        token = self._issuer.mint(
            namespace, service_account, name, uid, audiences=[AUDIENCE], ttl_seconds=TOKEN_SECONDS
        )
        expires = (datetime.now(UTC) + timedelta(seconds=TOKEN_SECONDS)).strftime("%Y-%m-%dT%H:%M:%SZ")
        parameters = {
            "roleName": layout.ROLE,
            "objects": layout.objects_yaml(objects),
            **(extra_parameters or {}),
        }
        info = PodInfo(namespace=namespace, name=name, uid=uid, service_account=service_account)
        attributes, secrets = build_mount_payload(
            parameters, spc_name=SPC_NAME, pod=info, tokens={AUDIENCE: (token, expires)}
        )
        if volume is not None:
            volume.mkdir(parents=True, exist_ok=True)
            target = str(volume)
        else:
            # The kubelet's tmpfs for the volume; nothing is written there.
            target = f"/var/lib/kubelet/pods/{uid}/volumes/kubernetes.io~csi/{SPC_NAME}/mount"
        return Pod(info=info, attributes=attributes, secrets=secrets, target_path=target)


class Driver:
    """The driver's side of the socket: one gRPC channel shared by every Mount, as in the driver."""

    def __init__(self, socket_path: Path) -> None:
        self._client = ProviderClient(socket_path, timeout_seconds=MOUNT_TIMEOUT_SECONDS)

    def close(self) -> None:
        self._client.close()

    def version_round_trips(self, count: int) -> list[float]:
        """Seconds per Version call: the socket's and gRPC's own cost, the floor under any Mount."""
        durations = []
        for _ in range(count):
            start = time.perf_counter()
            self._client.version()
            durations.append(time.perf_counter() - start)
        return durations

    def mount(self, pod: Pod, *, write: bool = False) -> MountSample:
        """Mount `pod`'s volume; with `write`, also project the files into its target directory."""
        start = time.perf_counter()
        try:
            result = self._client.mount(pod.attributes, pod.secrets, pod.target_path)
        except ProviderCallError as exc:
            return MountSample(start, time.perf_counter(), error=_short(f"{exc.code.name}: {exc.message}"))
        except Exception as exc:  # the driver's path checks, or anything unexpected: still one failed Mount
            return MountSample(start, time.perf_counter(), error=_short(f"{type(exc).__name__}: {exc}"))
        end = time.perf_counter()
        changed = write_payloads(pod.target_path, result.files) if write else None
        return MountSample(start, end, changed=changed, versions=tuple(sorted(result.versions.items())))


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"
