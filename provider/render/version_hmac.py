"""Object versions: a keyed HMAC of an object's configuration and its content.

Versions land in SecretProviderClassPodStatus objects that the built-in `view`
role can read, so a plain hash would let anyone test guesses of a secret. The
HMAC key makes the version opaque; a key shared by all nodes (a Kubernetes
Secret or a mounted file) makes versions identical across nodes and restarts.
"""

from __future__ import annotations

import base64
import hmac

__all__ = ["object_version"]


def object_version(key: bytes, fingerprint: str, content: bytes) -> str:
    """URL-safe base64 HMAC-SHA256 over the object's configuration then its content."""
    # A separator so that configuration and content cannot shift into each other.
    message = b"".join((fingerprint.encode(), b"\x00", content))
    return base64.urlsafe_b64encode(hmac.digest(key, message, "sha256")).decode()
