"""A value kept for each request configuration, served again while the inputs it was built from are equal.

Why: a volume's rotation polls repeat one request, and `parse_mount_request` hands out the
same `MountConfig` object for it, so what a poll derives from that configuration and a few
other inputs (its plan and cache keys, its token key, its rendered files) can be kept for
the next poll instead of built again. Keyed by the configuration's id; the configuration is
held with the value, so that its id cannot come to name another one.

Bounded: a node holds a few hundred volumes; when full, everything is let go at once and
the next poll of each volume builds afresh.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from provider.request.mount_request import MountConfig

__all__ = ["VOLUMES_KEPT", "PerVolume"]

# Configurations remembered; about one per volume on the node.
VOLUMES_KEPT = 256

Value = TypeVar("Value")


class PerVolume(Generic[Value]):
    """The last value built for each request configuration; safe to share between threads."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[MountConfig, tuple[object, ...], Value]] = {}

    def get(self, config: MountConfig, inputs: tuple[object, ...], build: Callable[[], Value]) -> Value:
        """The value kept for `config` if built from equal `inputs`, else `build()`, kept unless it raises."""
        last = self._last.get(id(config))
        if last is not None and last[0] is config and last[1] == inputs:
            return last[2]
        value = build()
        if len(self._last) >= VOLUMES_KEPT:
            self._last.clear()
        self._last[id(config)] = (config, inputs, value)
        return value
