"""Vault's token endpoints: log in with a service-account JWT, look up, renew and revoke our own token.

The Kubernetes and JWT auth methods take the same `{"role", "jwt"}` body at
`auth/<mount>/login`, so one function serves both. Login errors name everything the
operator needs to find the misconfiguration (role, mount, namespace, service account,
Vault's reason) and never the token.
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
from provider.request.vault_request import VaultRequest
from provider.vault.session import VaultSession

__all__ = ["Renewal", "VaultToken", "login", "lookup_self", "renew_self", "revoke_self"]

log = logging.getLogger("provider.auth")

_LOOKUP_SELF = "/v1/auth/token/lookup-self"
_RENEW_SELF = "/v1/auth/token/renew-self"
_REVOKE_SELF = "/v1/auth/token/revoke-self"


@dataclass(frozen=True)
class VaultToken:
    value: str = field(repr=False)
    lease_seconds: int
    renewable: bool
    # Who Vault logged the pod in as: its entity, else a digest of the alias metadata.
    identity: str


@dataclass(frozen=True)
class Renewal:
    """What Vault granted a renewed token."""

    lease_seconds: int
    renewable: bool


def login(session: VaultSession, mount: str, role: str, jwt: str, service_account: str) -> VaultToken:
    """Log in as `service_account` ("namespace/name", for messages) with its JWT; raises ProviderError."""
    target = session.target
    where = (
        f'login to Vault at {target.describe()} with role "{role}" on auth mount "{mount}"'
        f"{' in namespace ' + repr(target.namespace) if target.namespace else ''}"
        f" as service account {service_account}"
    )
    request = VaultRequest("POST", f"/v1/auth/{mount}/login", body=gojson.dumps({"jwt": jwt, "role": role}))
    try:
        reply = session.send(request)
    except SecretNotFound as exc:
        raise VaultRejected(
            f"{where} failed: no auth method is mounted at auth/{mount} ({exc})", status=exc.status
        ) from None
    except ProviderError as exc:
        # The JWT method answers 400 when a bound claim does not match: a denial too.
        if isinstance(exc, PermissionDenied) or exc.status == 400:
            reasons = redact(exc.reasons, [jwt]) or "Vault gave no reason"
            raise PermissionDenied(
                f"{where} was denied (HTTP {exc.status}): {reasons}", status=exc.status, reasons=reasons
            ) from None
        raise exc.reworded(f"{where} failed: {redact(str(exc), [jwt])}") from None

    auth = reply.payload.get("auth") if isinstance(reply.payload, dict) else None
    token = auth.get("client_token") if isinstance(auth, dict) else None
    if not gojson.is_text(token) or not token:
        # Upstream crashed on exactly this answer (its issue #310).
        raise VaultUnavailable(f"{where}: Vault answered {reply.status} without a client token")
    assert isinstance(auth, dict)
    lease = _int(auth.get("lease_duration"))
    log.debug("logged in with role %s on auth/%s (token lease %ds)", role, mount, lease)
    return VaultToken(token, lease, auth.get("renewable") is True, _identity(auth))


def _identity(auth: dict[str, Any]) -> str:
    entity = auth.get("entity_id")
    if isinstance(entity, str) and entity:
        return entity
    metadata = auth.get("metadata")
    text = gojson.dumps(metadata) if isinstance(metadata, dict) else ""
    return "metadata:" + hashlib.sha256(text.encode()).hexdigest()


def lookup_self(session: VaultSession) -> bool:
    """Whether Vault still knows the session's token (False when it refuses it); other errors raise.

    Not a login: it neither creates a token nor extends one.
    """
    try:
        session.send(VaultRequest("GET", _LOOKUP_SELF))
    except ProviderError as exc:
        if exc.status in (400, 401, 403):
            return False
        raise
    return True


def renew_self(session: VaultSession, increment: int) -> Renewal | None:
    """Renew the session's token by `increment` seconds; None if Vault refuses."""
    request = VaultRequest("POST", _RENEW_SELF, body=gojson.dumps({"increment": increment}))
    try:
        reply = session.send(request)
    except ProviderError as exc:
        if exc.status in (400, 403):
            return None
        raise
    auth = reply.payload.get("auth") if isinstance(reply.payload, dict) else None
    if not isinstance(auth, dict):
        return None
    return Renewal(_int(auth.get("lease_duration")), auth.get("renewable") is True)


def revoke_self(session: VaultSession) -> None:
    """Revoke the session's token (and the leases it obtained); errors are logged, not raised."""
    try:
        session.send(VaultRequest("POST", _REVOKE_SELF))
    except ProviderError as exc:
        log.warning("could not revoke a cached Vault token: %s", exc)


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0
