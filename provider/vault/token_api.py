"""Logging in to Vault as the pod: its service-account JWT at auth/<mount>/login.

The Kubernetes and JWT auth methods take the same `{"role", "jwt"}` body, so one
function serves both. Errors name everything the operator needs to find the
misconfiguration (role, mount, namespace, service account, Vault's reason) and
never the token.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

from provider.errors import (
    PermissionDenied,
    ProviderError,
    SecretNotFound,
    VaultRejected,
    VaultUnavailable,
    redact,
)
from provider.render import gojson
from provider.request.mount_request import MountConfig
from provider.vault.client import VaultCall, VaultClient
from provider.vault.deadline import Deadline
from provider.vault.target import VaultConnection

__all__ = ["VaultToken", "login", "renew_token", "revoke_token"]

log = logging.getLogger("provider.auth")


@dataclass(frozen=True)
class VaultToken:
    value: str = field(repr=False)
    lease_seconds: int
    renewable: bool
    # Who Vault logged the pod in as: its entity, else a digest of the alias metadata.
    identity: str


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
        reply = client.call(connection, call, deadline)
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
    if not gojson.is_text(token) or not token:
        # Upstream crashed on exactly this answer (its issue #310).
        raise VaultUnavailable(f"{where}: Vault answered {reply.status} without a client token")
    assert isinstance(auth, dict)
    lease = _int(auth.get("lease_duration"))
    log.debug("logged in with role %s on auth/%s (token lease %ds)", config.role, mount, lease)
    return VaultToken(token, lease, auth.get("renewable") is True, _identity(auth))


def _identity(auth: dict[str, Any]) -> str:
    entity = auth.get("entity_id")
    if isinstance(entity, str) and entity:
        return entity
    metadata = auth.get("metadata")
    text = gojson.dumps(metadata) if isinstance(metadata, dict) else ""
    return "metadata:" + hashlib.sha256(text.encode()).hexdigest()


def renew_token(
    client: VaultClient, connection: VaultConnection, token: str, increment: int, deadline: Deadline
) -> tuple[int, bool] | None:
    """Renew our own token by `increment` seconds: (new lease, renewable), or None if refused."""
    call = VaultCall(
        "POST", "/v1/auth/token/renew-self", body=gojson.dumps({"increment": increment}), token=token
    )
    try:
        reply = client.call(connection, call, deadline)
    except ProviderError as exc:
        if exc.status in (400, 403):
            return None
        raise
    auth = reply.payload.get("auth") if isinstance(reply.payload, dict) else None
    if not isinstance(auth, dict):
        return None
    return _int(auth.get("lease_duration")), auth.get("renewable") is True


def revoke_token(client: VaultClient, connection: VaultConnection, token: str, timeout: float) -> None:
    """Revoke our own token (and the leases it obtained); errors are logged, not raised."""
    try:
        client.call(
            connection, VaultCall("POST", "/v1/auth/token/revoke-self", token=token), Deadline(timeout)
        )
    except ProviderError as exc:
        log.warning("could not revoke a cached Vault token: %s", exc)


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0
