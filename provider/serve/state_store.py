"""The restart-state file (`-state-dir`): sealed with AES-GCM, written atomically, read with suspicion.

Layout: MAGIC, the format version (2 bytes, big-endian), a key id (16 bytes), a
nonce (12 bytes), then the AES-256-GCM ciphertext and tag. The first three are the
AAD, so neither the version nor the key id can be changed without the tag failing.
The AEAD key and the key id are HKDF derivations of the HMAC key with labels of
their own, so a file is only ever opened by a provider that shares the HMAC key,
and the key id lets a file of another key be told apart from a damaged one (it is
derived with its own label: it reveals nothing of the key).

Only imported when `-state-dir` is set: `cryptography` costs memory the Mount path
does not need.
"""

from __future__ import annotations

import os
import secrets
import struct
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "FORMAT_VERSION",
    "MAX_STATE_BYTES",
    "STATE_FILE",
    "StateFileError",
    "StateKeys",
    "read_state",
    "remove_stale_temporaries",
    "seal",
    "unseal",
    "write_state",
]

MAGIC = b"VCSPSTAT"
FORMAT_VERSION = 1
STATE_FILE = "state.bin"
# Far above what the caches hold (-cache-size tokens, 8 kept answers each, a few KiB
# per answer): a bigger file was not written by us, and is not read into memory.
MAX_STATE_BYTES = 64 * 1024 * 1024
STATE_KEY_LABEL = b"vault-csi-provider/state-key/v1"
KEY_ID_LABEL = b"vault-csi-provider/state-key-id/v1"
_KEY_ID_BYTES = 16
_NONCE_BYTES = 12
_TAG_BYTES = 16
_VERSION = struct.Struct(">H")
_AAD_BYTES = len(MAGIC) + _VERSION.size + _KEY_ID_BYTES
_HEADER_BYTES = _AAD_BYTES + _NONCE_BYTES


class StateFileError(Exception):
    """A state file that is not to be trusted; `reason` is a short fixed word (a metrics label)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class StateKeys:
    """The state's AEAD key and key id, both derived from the HMAC key."""

    key: bytes = field(repr=False)
    key_id: bytes = field(repr=False)

    @classmethod
    def derive(cls, hmac_key: bytes) -> StateKeys:
        return cls(_hkdf(hmac_key, STATE_KEY_LABEL, 32), _hkdf(hmac_key, KEY_ID_LABEL, _KEY_ID_BYTES))


def _hkdf(secret: bytes, label: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=label).derive(secret)


def seal(keys: StateKeys, plaintext: bytes, version: int = FORMAT_VERSION) -> bytes:
    """The file bytes for `plaintext`, with a fresh random nonce."""
    aad = MAGIC + _VERSION.pack(version) + keys.key_id
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return aad + nonce + AESGCM(keys.key).encrypt(nonce, plaintext, aad)


def unseal(keys: StateKeys, data: bytes) -> bytes:
    """The plaintext of a file `seal` wrote with these keys; StateFileError naming why not."""
    if len(data) < len(MAGIC) and MAGIC.startswith(data):
        raise StateFileError("truncated", f"it is truncated ({len(data)} bytes)")
    if not data.startswith(MAGIC):
        raise StateFileError("not-state", "it is not a provider state file (unknown header)")
    if len(data) < _AAD_BYTES:
        raise StateFileError("truncated", f"it is truncated ({len(data)} bytes)")
    (version,) = _VERSION.unpack_from(data, len(MAGIC))
    if version != FORMAT_VERSION:
        raise StateFileError(
            "version", f"it has format version {version}; this provider reads version {FORMAT_VERSION}"
        )
    if data[len(MAGIC) + _VERSION.size : _AAD_BYTES] != keys.key_id:
        raise StateFileError("foreign", "it was written under another HMAC key")
    if len(data) < _HEADER_BYTES + _TAG_BYTES:
        raise StateFileError("truncated", f"it is truncated ({len(data)} bytes)")
    nonce = data[_AAD_BYTES:_HEADER_BYTES]
    try:
        return AESGCM(keys.key).decrypt(nonce, data[_HEADER_BYTES:], data[:_AAD_BYTES])
    except InvalidTag:
        raise StateFileError("corrupt", "it does not verify (corrupt, truncated or tampered with)") from None


def read_state(path: Path, keys: StateKeys) -> bytes | None:
    """The verified plaintext of the file at `path`, None when there is none; StateFileError otherwise."""
    try:
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size > MAX_STATE_BYTES:
                raise StateFileError(
                    "too-big", f"it is {size} bytes, over the {MAX_STATE_BYTES} bytes allowed"
                )
            data = file.read(MAX_STATE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError("unreadable", f"it cannot be read: {exc.strerror}") from None
    if len(data) > MAX_STATE_BYTES:  # it grew while we looked
        raise StateFileError("too-big", f"it is over the {MAX_STATE_BYTES} bytes allowed")
    return unseal(keys, data)


def remove_stale_temporaries(directory: Path, older_than: float, now: float) -> None:
    """Remove temporary files a killed writer left behind (a live writer's are seconds old)."""
    for path in directory.glob(f".{STATE_FILE}.*.tmp"):
        try:
            if path.stat().st_mtime < now - older_than:
                path.unlink()
        except OSError:
            continue  # gone already, or not ours to remove


def write_state(directory: Path, data: bytes) -> None:
    """Replace the state file with `data` atomically: a crash leaves the old file or the new one.

    A temporary file in the same directory (so the rename stays on one filesystem),
    owner-only from its creation, synced before the rename; the directory is synced
    after it, so the rename itself survives a power cut.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Random, not the pid: during a rolling update the old and the new pod share the
    # directory, and both are pid 1 in their containers.
    temporary = directory / f".{STATE_FILE}.{secrets.token_hex(8)}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, directory / STATE_FILE)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory_descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory_descriptor)
    finally:
        os.close(directory_descriptor)
