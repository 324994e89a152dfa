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

from provider.connection import VaultConnection
from provider.deadline import Deadline
from provider.errors import ProviderError
from provider.vault import VaultCall, VaultClient
from provider.vault_requests import VaultRequest

__all__ = ["KvV2Paths", "kv2_data_path"]

# How long a path's mount answer is trusted; a mount upgraded from KV 1 to 2 is seen this late.
MOUNT_INFO_SECONDS = 600.0
MOUNT_INFO_CAPACITY = 4096
_PREFIX = "/v1/"


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
        vault: VaultClient,
        seconds: float = MOUNT_INFO_SECONDS,
        capacity: int = MOUNT_INFO_CAPACITY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._vault = vault
        self._seconds = seconds
        self._capacity = capacity
        self._clock = clock
        # (address, namespace, path) -> (KV v2 mount path or "", when the answer expires)
        self._mounts: OrderedDict[tuple[str, str, str], tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def resolve(
        self, connection: VaultConnection, token: str, request: VaultRequest, deadline: Deadline
    ) -> VaultRequest:
        """The request to send for a template's GET: on KV v2 with data/ in place, else as it is."""
        if request.method != "GET":
            return request
        path = request.path[len(_PREFIX) :]
        mount = self._kv2_mount(connection, token, path, deadline)
        if not mount:
            return request
        return replace(request, path=_PREFIX + kv2_data_path(path, _without_namespace(mount, connection)))

    def _kv2_mount(self, connection: VaultConnection, token: str, path: str, deadline: Deadline) -> str:
        key = (connection.address, connection.namespace, path)
        now = self._clock()
        with self._lock:
            known = self._mounts.get(key)
            if known is not None and known[1] > now:
                return known[0]
        call = VaultCall("GET", f"{_PREFIX}sys/internal/ui/mounts/{path}", token=token)
        try:
            payload = self._vault.call(connection, call, deadline).payload
        except ProviderError:
            # No answer (or not allowed to ask): read the path as written, and ask again next time.
            return ""
        mount = _kv2_mount_of(payload)
        with self._lock:
            self._mounts[key] = (mount, now + self._seconds)
            self._mounts.move_to_end(key)
            while len(self._mounts) > self._capacity:
                self._mounts.popitem(last=False)
        return mount


def _kv2_mount_of(payload: Any) -> str:
    """The mount path when the answer describes a KV version 2 mount, else ""."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        return ""
    options = data.get("options")
    version = options.get("version") if isinstance(options, dict) else None
    mount = data.get("path")
    if data.get("type") not in ("kv", "generic") or version != "2" or not isinstance(mount, str):
        return ""
    return mount


def _without_namespace(mount: str, connection: VaultConnection) -> str:
    """Vault may name the mount with the client's namespace in front; paths are relative to it."""
    namespace = connection.namespace.strip("/")
    if namespace and mount.startswith(namespace + "/"):
        return mount[len(namespace) + 1 :]
    return mount
