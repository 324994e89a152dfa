"""Object versions: a keyed HMAC of an object's configuration and its content.

Versions land in SecretProviderClassPodStatus objects that the built-in `view`
role can read, so a plain hash would let anyone test guesses of a secret. The
HMAC key makes the version opaque; a key shared by all nodes (a Kubernetes
Secret or a mounted file) makes versions identical across nodes and restarts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from pathlib import Path

__all__ = ["KEY_BYTES", "HmacKeyError", "load_key_file", "new_key", "object_version"]

KEY_BYTES = 32


class HmacKeyError(ValueError):
    """The configured HMAC key cannot be used."""


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def load_key_file(path: str) -> bytes:
    """The key from a file (e.g. a mounted Secret's `key`), at least 32 bytes."""
    try:
        key = Path(path).read_bytes()
    except OSError as exc:
        raise HmacKeyError(f"cannot read the HMAC key file {path}: {exc.strerror}") from None
    if len(key) < KEY_BYTES:
        raise HmacKeyError(f"the HMAC key file {path} holds {len(key)} bytes; it needs at least {KEY_BYTES}")
    return key


def object_version(key: bytes, fingerprint: str, content: bytes) -> str:
    """URL-safe base64 HMAC-SHA256 over the object's configuration then its content."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    mac.update(fingerprint.encode())
    # A separator so that configuration and content cannot shift into each other.
    mac.update(b"\x00")
    mac.update(content)
    return base64.urlsafe_b64encode(mac.digest()).decode()
