"""Errors raised by the development backends.

DevkitError
├── BackendMissing   a binary the backend needs is not installed (tests skip on it)
├── BackendFailed    the backend was found but did not start or answer in time
└── InvalidToken     a service-account token failed verification (fake apiserver)
"""

from __future__ import annotations

__all__ = ["BackendFailed", "BackendMissing", "DevkitError", "InvalidToken"]


class DevkitError(Exception):
    """Base class for every error raised by `provider.devkit`."""


class BackendMissing(DevkitError):
    """A backend cannot run here because its binaries are not installed.

    The message says how to install them; tests turn this into a skip (or a failure on CI).
    """


class BackendFailed(DevkitError):
    """A backend was started but exited or did not become ready; the message carries its log tail."""


class InvalidToken(DevkitError):
    """A JWT is malformed, wrongly signed, expired or not yet valid."""
