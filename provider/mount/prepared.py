"""A volume's plan and cache keys, kept from one poll to the next while nothing they derive from changes.

Why: on a warm poll the plan (which requests, in which order, for which objects) and the
lease-cache key of each request come out the same every time, yet building them again
(frozen dataclasses, each key's seven-field hash) was a twentieth of a poll's CPU. They
derive from the request configuration (the same `MountConfig` object for repeated
requests, `parse_mount_request`), the Vault target, the auth mount and the identity Vault
logged the pod in as; any other value of those builds afresh. A template's plan also
depends on which KV mounts are version 2, which `KvV2Paths` may learn anew at any poll:
classes with templates are planned on every Mount, as before.

Bounded: a node holds a few hundred volumes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from provider.mount.lease_cache import LeaseKey
from provider.mount.plan import MountPlan
from provider.request.mount_request import MountConfig
from provider.vault.target import VaultTarget

__all__ = ["PreparedMounts"]

# Configurations remembered; about one per volume on the node.
VOLUMES_KEPT = 256


class _Prepared(NamedTuple):
    config: MountConfig  # held so that its id cannot name another one
    target: VaultTarget
    auth_mount: str
    identity: str
    plan: MountPlan
    keys: list[LeaseKey]


class PreparedMounts:
    """The last plan and keys of each request configuration; safe to share between threads."""

    def __init__(self) -> None:
        self._last: dict[int, _Prepared] = {}

    def plan_and_keys(
        self,
        config: MountConfig,
        target: VaultTarget,
        auth_mount: str,
        identity: str,
        build: Callable[[], tuple[MountPlan, list[LeaseKey]]],
    ) -> tuple[MountPlan, list[LeaseKey]]:
        """The kept plan and keys when made for the same inputs, else `build()` (kept unless templated)."""
        last = self._last.get(id(config))
        if (
            last is not None
            and last.config is config
            and last.target is target
            and last.auth_mount == auth_mount
            and last.identity == identity
        ):
            return last.plan, last.keys
        plan, keys = build()
        if all(obj.template is None for obj in config.objects):
            if len(self._last) >= VOLUMES_KEPT:
                self._last.clear()
            self._last[id(config)] = _Prepared(config, target, auth_mount, identity, plan, keys)
        return plan, keys
