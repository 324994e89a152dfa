"""Logging in to Vault as the pod: its service-account JWT at auth/<mount>/login.

The Kubernetes and JWT auth methods take the same `{"role", "jwt"}` body, so one
function serves both. Errors name everything the operator needs to find the
misconfiguration (role, mount, namespace, service account, Vault's reason) and
never the token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from provider import gojson
from provider.connection import VaultConnection
from provider.deadline import Deadline
from provider.errors import (
    PermissionDenied,
    ProviderError,
    SecretNotFound,
    VaultRejected,
    VaultUnavailable,
    redact,
)
from provider.spc import MountConfig
from provider.vault import VaultCall, VaultClient

__all__ = ["VaultToken", "login"]

log = logging.getLogger("provider.auth")


@dataclass(frozen=True)
class VaultToken:
    value: str = field(repr=False)
    lease_seconds: int
    renewable: bool


def login(
    client: VaultClient, connection: VaultConnection, config: MountConfig, mount: str, deadline: Deadline
) -> VaultToken:
    """Log in with the pod's JWT; raises ProviderError naming role, mount and pod."""
    where = (
        f'login to Vault at {connection.describe()} with role "{config.role}" on auth mount "{mount}"'
        f"{' in namespace ' + repr(connection.namespace) if connection.namespace else ''}"
        f" as service account {config.pod.namespace}/{config.pod.service_account}"
    )
    body = gojson.dumps({"jwt": config.jwt, "role": config.role})
    call = VaultCall("POST", f"/v1/auth/{mount}/login", body=body)
    try:
        reply = client.call(connection, call, deadline.remaining())
    except SecretNotFound as exc:
        raise VaultRejected(f"{where} failed: no auth method is mounted at auth/{mount} ({exc})") from None
    except ProviderError as exc:
        # The JWT method answers 400 when a bound claim does not match: a denial too.
        if isinstance(exc, PermissionDenied) or exc.status == 400:
            reasons = redact(exc.reasons, [config.jwt]) or "Vault gave no reason"
            raise PermissionDenied(f"{where} was denied (HTTP {exc.status}): {reasons}") from None
        raise type(exc)(f"{where} failed: {redact(str(exc), [config.jwt])}") from None

    auth = reply.payload.get("auth") if isinstance(reply.payload, dict) else None
    token = auth.get("client_token") if isinstance(auth, dict) else None
    if not isinstance(token, str) or not token:
        # Upstream crashed on exactly this answer (its issue #310).
        raise VaultUnavailable(f"{where}: Vault answered {reply.status} without a client token")
    lease = _int(auth.get("lease_duration"))  # type: ignore[union-attr]
    log.debug("logged in with role %s on auth/%s (token lease %ds)", config.role, mount, lease)
    return VaultToken(token, lease, auth.get("renewable") is True)  # type: ignore[union-attr]


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0
