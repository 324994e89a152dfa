"""Vault Agent's KV version 2 path shim, for template reads: `secret "secret/app"` reads secret/data/app.

consul-template asks Vault which mount a read path lies under
(`sys/internal/ui/mounts/<path>`); on a KV version 2 mount it puts `data/` after the
mount unless the rest of the path already starts with `data/` or `metadata/`. Templates
moved over from Agent may rely on that. Plain objects do not get it: upstream's provider
reads paths as written, and so do we.

What a path's mount is changes rarely and says nothing secret, so answers are kept for a
while per Vault address, namespace and path; the read itself is still made with the
pod's own token.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from provider.errors import ProviderError
from provider.request.vault_request import V1, VaultRequest
from provider.vault.session import VaultSession
from provider.vault.target import VaultTarget

__all__ = ["KvV2Paths", "kv2_data_path", "mount_info"]

# How long a path's mount answer is trusted; a mount upgraded from KV 1 to 2 is seen this late.
MOUNT_INFO_SECONDS = 600.0
MOUNT_INFO_CAPACITY = 4096


def kv2_data_path(path: str, mount: str) -> str:
    """The KV v2 data path for `path` (no /v1/) on the KV v2 mount `mount` ("secret/")."""
    mount = mount if mount.endswith("/") else mount + "/"
    if path in (mount, mount.rstrip("/")):
        return mount + "data"
    rest = path[len(mount) :] if path.startswith(mount) else path
    if rest.startswith(("data/", "metadata/")) or not path.startswith(mount):
        return path
    return mount + "data/" + rest


class KvV2Paths:
    """Resolves template read requests on KV v2 mounts to their data paths; safe to share."""

    def __init__(
        self,
        seconds: float = MOUNT_INFO_SECONDS,
        capacity: int = MOUNT_INFO_CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._seconds = seconds
        self._capacity = capacity
        self._clock = clock
        # (address, namespace, path) -> (KV v2 mount path or "", when the answer expires)
        self._mounts: OrderedDict[tuple[str, str, str], tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def resolve(self, session: VaultSession, request: VaultRequest) -> VaultRequest:
        """The request to send for a template's GET: on KV v2 with data/ in place, else as it is."""
        if request.method != "GET":
            return request
        path = request.api_path
        mount = self._kv2_mount(session, path)
        if not mount:
            return request
        return replace(request, path=V1 + kv2_data_path(path, _without_namespace(mount, session.target)))

    def _kv2_mount(self, session: VaultSession, path: str) -> str:
        key = (session.target.address, session.target.namespace, path)
        now = self._clock()
        with self._lock:
            known = self._mounts.get(key)
            if known is not None and known[1] > now:
                return known[0]
        info = mount_info(session, path)
        if info is None:
            # No answer (or not allowed to ask): read the path as written, and ask again next time.
            return ""
        mount = _kv2_mount_of(info)
        with self._lock:
            self._mounts[key] = (mount, now + self._seconds)
            self._mounts.move_to_end(key)
            while len(self._mounts) > self._capacity:
                self._mounts.popitem(last=False)
        return mount


def mount_info(session: VaultSession, path: str) -> dict[str, Any] | None:
    """What Vault says of the mount over `path` (no /v1/): type, path, options; None if it will not say."""
    try:
        payload = session.send(VaultRequest("GET", f"{V1}sys/internal/ui/mounts/{path}")).payload
    except ProviderError:
        return None
    data = payload.get("data") if isinstance(payload, dict) else None
    return data if isinstance(data, dict) else None


def _kv2_mount_of(data: dict[str, Any]) -> str:
    """The mount path when the mount information describes a KV version 2 mount, else ""."""
    options = data.get("options")
    version = options.get("version") if isinstance(options, dict) else None
    mount = data.get("path")
    if data.get("type") not in ("kv", "generic") or version != "2" or not isinstance(mount, str):
        return ""
    return mount


def _without_namespace(mount: str, target: VaultTarget) -> str:
    """Vault may name the mount with the client's namespace in front; paths are relative to it."""
    namespace = target.namespace.strip("/")
    if namespace and mount.startswith(namespace + "/"):
        return mount[len(namespace) + 1 :]
    return mount
