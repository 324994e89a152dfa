"""Where the versions' HMAC key comes from; loaded once at start, kept in memory.

In order: a key file (`-hmac-key-file`, e.g. a mounted Secret: the provider then
needs no Kubernetes permission at all); in a cluster, the Secret named by
`-hmac-secret-name` in the provider's namespace, created immutable with 32 random
bytes if missing (concurrent creators on other nodes resolve the race by reading
back whichever Secret won); outside a cluster, a random key for this process only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from provider.serve.kube import KubeClient, KubeConflict, KubeError, KubeNotFound

__all__ = [
    "JWT_DIGEST_LABEL",
    "KEY_BYTES",
    "HmacKeyError",
    "derive_key",
    "key_from_secret",
    "load_key_file",
    "new_key",
]

KEY_BYTES = 32
SECRET_KEY_FIELD = "key"  # noqa: S105 - the field name in the Secret, not a key
SECRET_LABELS = {"app.kubernetes.io/name": "vault-csi-provider", "app.kubernetes.io/component": "hmac-key"}
# Start-up retries for a Kubernetes API that is briefly unavailable (node boot).
ATTEMPTS = 6
FIRST_DELAY_SECONDS = 0.5

# HKDF labels: each use of the HMAC key gets a key of its own (the state's key is in state_store).
JWT_DIGEST_LABEL = b"vault-csi-provider/jwt-digest/v1"

log = logging.getLogger("provider.hmac")


class HmacKeyError(Exception):
    """No usable HMAC key could be had; the message says what to fix."""


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def derive_key(hmac_key: bytes, label: bytes, length: int = KEY_BYTES) -> bytes:
    """HKDF-SHA256 (RFC 5869, no salt) of the HMAC key for one purpose, named by `label`.

    The standard library's, not `cryptography`'s: the JWT digests need it in every
    provider, and only `-state-dir` may pay for importing `cryptography` (a test checks
    that both agree).
    """
    prk = hmac.new(b"\x00" * hashlib.sha256().digest_size, hmac_key, hashlib.sha256).digest()
    okm, block = b"", b""
    for counter in range(1, -(-length // hashlib.sha256().digest_size) + 1):
        block = hmac.new(prk, block + label + bytes([counter]), hashlib.sha256).digest()
        okm += block
    return okm[:length]


def load_key_file(path: str) -> bytes:
    """The key from a file (e.g. a mounted Secret's `key`), at least 32 bytes."""
    try:
        key = Path(path).read_bytes()
    except OSError as exc:
        raise HmacKeyError(f"cannot read the HMAC key file {path}: {exc.strerror}") from None
    if len(key) < KEY_BYTES:
        raise HmacKeyError(f"the HMAC key file {path} holds {len(key)} bytes; it needs at least {KEY_BYTES}")
    return key


def _key_in(secret: Mapping[str, Any], where: str) -> bytes:
    data = secret.get("data")
    encoded = data.get(SECRET_KEY_FIELD) if isinstance(data, dict) else None
    try:
        key = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else b""
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < KEY_BYTES:
        raise HmacKeyError(
            f"the Secret {where} exists but has no usable data.{SECRET_KEY_FIELD} (at least {KEY_BYTES} "
            "bytes): delete it so the provider creates a new one, or put a random key there"
        )
    return key


def key_from_secret(
    kube: KubeClient, namespace: str, name: str, sleep: Callable[[float], None] = time.sleep
) -> bytes:
    """Read the Secret's key, creating the Secret if it is missing; retries passing API errors."""
    where = f"{namespace}/{name}"
    delay = FIRST_DELAY_SECONDS
    for attempt in range(1, ATTEMPTS + 1):
        try:
            try:
                return _key_in(kube.get_secret(namespace, name), where)
            except KubeNotFound:
                pass
            key = new_key()
            try:
                kube.create_secret(namespace, name, {SECRET_KEY_FIELD: key}, SECRET_LABELS)
            except KubeConflict:
                # Another node created it first: its key is the one everyone uses.
                continue
            log.info("created the HMAC key Secret %s", where)
            return key
        except KubeError as exc:
            if exc.status is not None and exc.status < 500 and exc.status != 429:
                raise HmacKeyError(f"cannot get the HMAC key: {exc}") from None
            if attempt == ATTEMPTS:
                raise HmacKeyError(f"cannot get the HMAC key after {ATTEMPTS} attempts: {exc}") from None
            log.warning("cannot get the HMAC key yet (%s); retrying in %.1fs", exc, delay)
            sleep(delay)
            delay *= 2
    raise HmacKeyError(f"the Secret {where} kept changing while the provider tried to read it")
