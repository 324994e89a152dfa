"""Vault's answer → a reply or one of our errors: the one table from HTTP status to exception.

Numbers are kept verbatim (`gojson`), for Go-compatible files. Only Vault's own error
strings (its `errors` list) ever join a message, never the rest of a body, and they
are redacted first: Vault echoes request values in its errors (a JWT it could not
parse, a PKI common name).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from provider.errors import (
    PermissionDenied,
    ProviderError,
    SecretNotFound,
    VaultRejected,
    VaultUnavailable,
    redact,
)
from provider.render import gojson
from provider.vault.retry import parse_retry_after, retryable_status
from provider.vault.target import VaultTarget

__all__ = ["VaultReply", "reply_or_error", "status_error"]

# Vault's own error texts are short; anything longer is not an error list we show.
MAX_REASON_CHARS = 300

# status → (error, message); {where} is the target, {status} the status, {said} ": reasons".
_BY_STATUS: dict[int, tuple[type[ProviderError], str]] = {
    401: (PermissionDenied, "permission denied ({status}){said}"),
    403: (PermissionDenied, "permission denied ({status}){said}"),
    404: (SecretNotFound, "not found (404){said}"),
    412: (VaultUnavailable, "Vault at {where} has not caught up with a recent write yet (412){said}"),
    429: (VaultUnavailable, "Vault at {where} is rate limiting requests (429){said}"),
    503: (VaultUnavailable, "Vault at {where} is sealed or unavailable (503){said}"),
}
_SERVER_ERROR = (VaultUnavailable, "Vault at {where} failed with HTTP {status}{said}")
_REDIRECT = (
    VaultRejected,
    "Vault at {where} redirected the request ({status}) to {location}, which is not one of its "
    "addresses or -allowed-vault-addresses; list the cluster's nodes in the address, or put a load "
    "balancer in front of Vault",
)
_OTHER = (VaultRejected, "Vault rejected the request (HTTP {status}){said}")
_MULTIERROR_HEAD = re.compile(r"^\d+ errors? occurred:\s*")


@dataclass(frozen=True)
class VaultReply:
    status: int
    # Parsed JSON (numbers as gojson.JsonNumber), None for an empty body, or the bytes of a
    # 2xx answer that is not JSON (PEM, DER): only an object without secretKey writes those.
    payload: Any = field(repr=False)


def reply_or_error(
    target: VaultTarget, status: int, headers: Mapping[str, str], body: bytes, sensitive: Iterable[str]
) -> VaultReply:
    """The reply to a 2xx answer; otherwise raise the error its status means.

    `sensitive` holds the request's token and body values, redacted from Vault's reasons.
    """
    payload: Any = None
    parsed = False
    if body.strip():
        try:
            payload = gojson.loads(body)
            parsed = True
        except (ValueError, RecursionError):
            payload = None
    if 200 <= status < 300:
        if body.strip() and not parsed:
            if _looks_like_html(headers, body):
                # A proxy's login or error page, never Vault's: Vault answers raw only with PEM, DER, text.
                raise VaultUnavailable(
                    f"Vault at {target.describe()} answered {status} with a body that is not JSON",
                    status=status,
                )
            # A raw answer (pki/ca/pem, pki/ca_chain, pki/crl): its bytes, for objects that write it whole.
            return VaultReply(status, bytes(body))
        return VaultReply(status, payload)
    raise status_error(target, status, _reasons(payload, sensitive), headers)


def _looks_like_html(headers: Mapping[str, str], body: bytes) -> bool:
    content_type = headers.get("Content-Type") or headers.get("content-type") or ""
    return content_type.lower().startswith("text/html") or body.lstrip()[:1] == b"<"


def status_error(target: VaultTarget, status: int, reasons: str, headers: Mapping[str, str]) -> ProviderError:
    """The error for a non-2xx answer, carrying the status, reasons and retry information."""
    if status in _BY_STATUS:
        kind, message = _BY_STATUS[status]
    elif status >= 500:
        kind, message = _SERVER_ERROR
    elif 300 <= status < 400:
        kind, message = _REDIRECT
    else:
        kind, message = _OTHER
    location = headers.get("Location", "")
    text = message.format(
        where=target.describe(),
        status=status,
        said=f": {reasons}" if reasons else "",
        location=urlsplit(location).netloc if location else "elsewhere",
    )
    return kind(
        text,
        status=status,
        reasons=reasons,
        retryable=retryable_status(status),
        retry_after=parse_retry_after(headers.get("Retry-After")),
    )


def _reasons(payload: Any, sensitive: Iterable[str]) -> str:
    """Vault's own error strings (the `errors` list), never the rest of the body.

    Redacted before the text is shortened: a cut-off token would no longer be recognised later.
    """
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if not isinstance(errors, list):
        return ""
    reasons = [reason for item in errors if isinstance(item, str) for reason in _split_multierror(item)]
    return redact("; ".join(reasons), sensitive)[:MAX_REASON_CHARS]


def _split_multierror(text: str) -> list[str]:
    """Vault wraps reasons as '1 error occurred:\\n\\t* permission denied\\n\\n'; keep the reasons."""
    body = _MULTIERROR_HEAD.sub("", text)
    parts = [" ".join(part.split()) for part in re.split(r"\n\s*\* ", "\n" + body)]
    return [part.lstrip("* ") for part in parts if part]
