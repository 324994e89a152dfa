"""A volume's plan and cache keys, kept from one poll to the next while nothing they derive from changes.

Why: on a warm poll the plan (which requests, in which order, for which objects) and the
lease-cache key of each request come out the same every time, yet building them again
(frozen dataclasses, each key's seven-field hash) was a twentieth of a poll's CPU. They
derive from the request configuration, the Vault target, the auth mount and the identity
Vault logged the pod in as (`per_volume` keeps them while those are equal). A template's
plan also depends on which KV mounts are version 2, which `KvV2Paths` may learn anew at
any poll: classes with templates are planned on every Mount, as before.
"""

from __future__ import annotations

from collections.abc import Callable

from provider.mount.lease_cache import LeaseKey
from provider.mount.per_volume import PerVolume
from provider.mount.plan import MountPlan
from provider.request.mount_request import MountConfig
from provider.vault.target import VaultTarget

__all__ = ["PreparedMounts"]


class PreparedMounts:
    """The last plan and keys of each request configuration; safe to share between threads."""

    def __init__(self) -> None:
        self._kept: PerVolume[tuple[MountPlan, list[LeaseKey]]] = PerVolume()

    def plan_and_keys(
        self,
        config: MountConfig,
        target: VaultTarget,
        auth_mount: str,
        identity: str,
        build: Callable[[], tuple[MountPlan, list[LeaseKey]]],
    ) -> tuple[MountPlan, list[LeaseKey]]:
        """The kept plan and keys when made for the same inputs, else `build()` (kept unless templated)."""
        if any(obj.template is not None for obj in config.objects):
            return build()
        return self._kept.get(config, (target, auth_mount, identity), build)
