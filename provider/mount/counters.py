"""What the Mount layer counts, as a protocol; the serve layer's Prometheus metrics implement it."""

from __future__ import annotations

from typing import Literal, Protocol

__all__ = ["MountCounters"]


class MountCounters(Protocol):
    def login(self, result: Literal["success", "denied", "error"]) -> None:
        """One login to Vault by its outcome."""

    def cache_lookup(self, cache: Literal["token", "lease", "read"], result: Literal["hit", "miss"]) -> None:
        """A token served from the cache (or not), a kept dynamic secret or a static read served again."""

    def lease_renewal(self, result: Literal["renewed", "refused", "capped", "error"]) -> None:
        """One renewal of a kept lease: extended, refused by Vault, capped by its max TTL, or no answer."""
