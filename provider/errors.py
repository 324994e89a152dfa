"""Every error the provider raises on purpose, in one tree.

    ProviderError                    base; `str()` is safe to show in a pod event
    ├── InvalidRequest               the request or SecretProviderClass is wrong  → INVALID_ARGUMENT
    ├── PermissionDenied             Vault refused the login or a read (403)      → PERMISSION_DENIED
    ├── SecretNotFound               no secret at a path, or no such key          → NOT_FOUND
    ├── VaultRejected                Vault refused the request itself (400 ...)   → FAILED_PRECONDITION
    ├── VaultUnavailable             unreachable, sealed, overloaded, odd answer  → UNAVAILABLE
    ├── KubernetesUnavailable        the API server failed a TokenRequest         → UNAVAILABLE
    ├── ResponseTooLarge             the files exceed what the driver accepts     → RESOURCE_EXHAUSTED
    ├── DeadlineExceeded             the caller's deadline ran out                → DEADLINE_EXCEEDED
    └── Cancelled                    the caller went away                         → CANCELLED

The servicer maps these classes to gRPC codes in one table; anything else becomes
INTERNAL with a generic message. Messages name the object and the key and say what
to change. They never carry a token, a secret value, a `secretArgs` value or a
response body: they end up in pod events that anyone who can describe a pod reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Self

__all__ = [
    "Cancelled",
    "DeadlineExceeded",
    "InvalidRequest",
    "KubernetesUnavailable",
    "PermissionDenied",
    "ProviderError",
    "ResponseTooLarge",
    "SecretNotFound",
    "VaultRejected",
    "VaultUnavailable",
    "redact",
]


class ProviderError(Exception):
    """Base class; the message is written for the person editing the SecretProviderClass.

    The fields say what Vault answered and whether asking again may help; they travel
    with the error when a layer above adds its own words (`prefixed`, `reworded`).
    """

    #: The HTTP status Vault answered with, when the error is Vault's answer.
    status: int | None = None
    #: Vault's own error strings from that answer ("" when it gave none).
    reasons: str = ""
    #: Whether the same request may succeed when sent again (a passing failure).
    retryable: bool = False
    #: Seconds Vault asked us to wait (Retry-After), if it did.
    retry_after: float | None = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reasons: str = "",
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reasons = reasons
        self.retryable = retryable
        self.retry_after = retry_after

    def reworded(self, message: str, *, reasons: str | None = None) -> Self:
        """The same error (class and every field) with another message, and `reasons` if given.

        Not `type(self)(message)`: subclasses take other constructor arguments, and the
        fields (status, retry information) must survive the new words.
        """
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.args = (message,)
        if reasons is not None:
            clone.reasons = reasons
        return clone

    def prefixed(self, prefix: str) -> Self:
        """The same error, its message behind `prefix: ` (the object or call it concerns)."""
        return self.reworded(f"{prefix}: {self}")


class InvalidRequest(ProviderError):
    """The Mount request or the SecretProviderClass cannot be used as it is."""

    def __init__(self, problems: str | Iterable[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))

    def reworded(self, message: str, *, reasons: str | None = None) -> Self:
        clone = super().reworded(message, reasons=reasons)
        clone.problems = [message]
        return clone


class PermissionDenied(ProviderError):
    """Vault answered 403 to the login or to a read."""


class SecretNotFound(ProviderError):
    """Nothing at the secret path, or the secret has no such key."""


class VaultRejected(ProviderError):
    """Vault refused the request as malformed or not allowed for other reasons (400, 405, ...)."""


class VaultUnavailable(ProviderError):
    """Vault could not be reached, is sealed or overloaded, or answered something unusable."""


class KubernetesUnavailable(ProviderError):
    """The Kubernetes API could not serve a call made for a Mount (the TokenRequest fallback)."""


class ResponseTooLarge(ProviderError):
    """The Mount response would exceed the driver's gRPC receive limit."""


class DeadlineExceeded(ProviderError):
    """The caller's deadline passed before the Mount finished."""


class Cancelled(ProviderError):
    """The caller cancelled the Mount."""


REDACTED = "[redacted]"
# Shorter strings are too likely to match ordinary words of a message.
_MIN_REDACTED_LENGTH = 4


def redact(text: str, sensitive: Iterable[str]) -> str:
    """Replace every occurrence of a sensitive string (token, argument value) in `text`.

    Used on text that comes from elsewhere (Vault's error reasons) before it joins one
    of our messages: Vault echoes request values such as a PKI common name in its errors.
    """
    for value in sorted({s for s in sensitive if len(s) >= _MIN_REDACTED_LENGTH}, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text
