"""What the Vault client counts: each request by kind and status, and each failover.

The kinds are a fixed, small set (never a path), so they can label metrics.
"""

from __future__ import annotations

from typing import Protocol

from provider.request.vault_request import VaultRequest

__all__ = ["RequestCounter", "Uncounted", "request_kind"]

_SPECIAL_KINDS = {
    "/v1/auth/token/renew-self": "renew",
    "/v1/sys/leases/renew": "renew",
    "/v1/sys/leases/lookup": "lookup",
    "/v1/auth/token/lookup-self": "lookup",
    "/v1/auth/token/revoke-self": "revoke",
}


class RequestCounter(Protocol):
    """Counts Vault requests by kind and HTTP status (None: no answer); the metrics implement it."""

    def vault_request(self, kind: str, status: int | None) -> None: ...

    def vault_failover(self, reason: str) -> None:
        """A node of several could not serve and the next was asked (unreachable, sealed, standby)."""


class Uncounted:
    """A RequestCounter for tools that keep no metrics (`lint --vault`)."""

    def vault_request(self, kind: str, status: int | None) -> None:
        """Counts nothing."""

    def vault_failover(self, reason: str) -> None:
        """Counts nothing."""


def request_kind(request: VaultRequest) -> str:
    """The metrics' request kind: login, renew, lookup, revoke, mount-info, read or write."""
    if request.path.startswith("/v1/auth/") and request.path.endswith("/login"):
        return "login"
    if request.path.startswith("/v1/sys/internal/ui/mounts/"):
        return "mount-info"
    return _SPECIAL_KINDS.get(request.path) or ("read" if request.method == "GET" else "write")
