"""A failed read, worded for the object that needed it: what to change, never a value."""

from __future__ import annotations

from provider.errors import ProviderError, redact
from provider.request.objects import SecretObject
from provider.request.vault_request import VaultRequest

__all__ = ["read_error"]

_KV2_HINT = "; for a KV version 2 engine the path needs data/ after the mount, as in secret/data/my-app"


def read_error(
    obj: SecretObject, request: VaultRequest, exc: ProviderError, sensitive: list[str]
) -> ProviderError:
    """`exc` (Vault's answer to `request`) as `obj`'s error: fields kept, Vault's reasons redacted."""
    if exc.status == 404:
        hint = _KV2_HINT if request.method == "GET" and "/data/" not in request.path else ""
        message = f"nothing at {request.path} (404){hint}"
    elif exc.status == 403:
        reasons = redact(exc.reasons, sensitive) or "Vault gave no reason"
        message = f"{request.describe()} was denied (403): {reasons}; check the role's policies"
    else:
        message = f"{request.describe()} failed: {redact(str(exc), sensitive)}"
    return exc.reworded(f"{obj.label()}: {message}", reasons=redact(exc.reasons, sensitive))
