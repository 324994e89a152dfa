"""provider.versions: opaque, stable object versions (HMAC-SHA256 of configuration and content)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest

from provider.render.version_hmac import object_version
from provider.serve.hmac_key import (
    JWT_DIGEST_LABEL,
    KEY_BYTES,
    HmacKeyError,
    derive_key,
    load_key_file,
    new_key,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
FINGERPRINT = '{"objectName":"a","secretPath":"secret/data/a"}'
CONTENT = b"s3cr3t-value"


def test_same_input_same_version() -> None:
    """Two computations from the same key, configuration and content agree (across nodes and restarts)."""
    assert object_version(KEY, FINGERPRINT, CONTENT) == object_version(bytes(KEY), str(FINGERPRINT), CONTENT)


@pytest.mark.parametrize(
    ("key", "fingerprint", "content"),
    [
        pytest.param(OTHER_KEY, FINGERPRINT, CONTENT, id="key"),
        pytest.param(KEY, FINGERPRINT.replace('"a"', '"b"', 1), CONTENT, id="fingerprint"),
        pytest.param(KEY, FINGERPRINT, CONTENT + b"!", id="content"),
        pytest.param(KEY, FINGERPRINT, b"", id="empty-content"),
        # Without a separator these two would hash the same bytes.
        pytest.param(KEY, FINGERPRINT + CONTENT[:1].decode(), CONTENT[1:], id="byte-moved-into-fingerprint"),
    ],
)
def test_any_change_changes_the_version(key: bytes, fingerprint: str, content: bytes) -> None:
    """A different key, configuration or content gives a different version."""
    assert object_version(key, fingerprint, content) != object_version(KEY, FINGERPRINT, CONTENT)


def test_version_is_url_safe_base64_of_32_bytes() -> None:
    """The version is URL-safe base64 (with padding) of a 32-byte digest."""
    versions = [object_version(KEY, FINGERPRINT, bytes([n]) * n) for n in range(64)]
    for version in versions:
        assert len(version) == 44
        assert "+" not in version
        assert "/" not in version
        assert len(base64.urlsafe_b64decode(version)) == 32
    # Across 64 digests the URL-safe characters show up; a plain b64encode would have '+' or '/'.
    assert any(("-" in v) or ("_" in v) for v in versions)


def test_version_is_hmac_sha256() -> None:
    """The exact construction: HMAC-SHA256(key, fingerprint, NUL, content), URL-safe base64."""
    mac = hmac.new(KEY, FINGERPRINT.encode() + b"\x00" + CONTENT, hashlib.sha256)
    expected = base64.urlsafe_b64encode(mac.digest()).decode()
    assert object_version(KEY, FINGERPRINT, CONTENT) == expected


def test_version_is_not_a_plain_hash_of_the_content() -> None:
    """Nobody who can read a pod status can confirm a guessed secret with a SHA-256 of it."""
    version = object_version(KEY, FINGERPRINT, CONTENT)
    digest = base64.urlsafe_b64decode(version)
    assert digest != hashlib.sha256(CONTENT).digest()
    assert digest != hashlib.sha256(FINGERPRINT.encode() + b"\x00" + CONTENT).digest()
    assert digest != hashlib.sha256(FINGERPRINT.encode() + CONTENT).digest()


def test_new_key_is_random_and_32_bytes() -> None:
    """new_key gives 32 fresh random bytes each time."""
    keys = {new_key() for _ in range(4)}
    assert len(keys) == 4
    assert all(len(key) == KEY_BYTES == 32 for key in keys)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(bytes(range(32)), id="exactly-32"),
        pytest.param(b"k" * 64, id="longer"),
    ],
)
def test_load_key_file(tmp_path: Path, content: bytes) -> None:
    """A key file of at least 32 bytes is read as it is."""
    path = tmp_path / "key"
    path.write_bytes(content)
    assert load_key_file(str(path)) == content


@pytest.mark.parametrize(
    ("content", "length"),
    [
        pytest.param(b"", 0, id="empty"),
        pytest.param(b"k" * 31, 31, id="one-short"),
    ],
)
def test_short_key_file_is_rejected(tmp_path: Path, content: bytes, length: int) -> None:
    """A key shorter than 32 bytes is refused, saying how long it is and how long it must be."""
    path = tmp_path / "key"
    path.write_bytes(content)
    with pytest.raises(HmacKeyError) as caught:
        load_key_file(str(path))
    assert str(caught.value) == f"the HMAC key file {path} holds {length} bytes; it needs at least 32"


def test_missing_key_file_is_rejected(tmp_path: Path) -> None:
    """An unreadable key file is an HmacKeyError naming the path and the reason."""
    path = tmp_path / "absent"
    with pytest.raises(HmacKeyError) as caught:
        load_key_file(str(path))
    assert str(caught.value) == f"cannot read the HMAC key file {path}: No such file or directory"


@pytest.mark.parametrize("length", [16, 32, 33, 64, 100])
def test_derive_key_is_rfc5869_hkdf_sha256(length: int) -> None:
    """The stdlib HKDF (the JWT digests' key, no `cryptography` import) equals the audited one."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    hmac_key = bytes(range(40))
    expected = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=JWT_DIGEST_LABEL).derive(
        hmac_key
    )
    assert derive_key(hmac_key, JWT_DIGEST_LABEL, length) == expected


def test_derived_keys_differ_by_label_and_from_the_hmac_key() -> None:
    hmac_key = new_key()
    assert derive_key(hmac_key, b"a") != derive_key(hmac_key, b"b")
    assert hmac_key not in (derive_key(hmac_key, b"a"), derive_key(hmac_key, JWT_DIGEST_LABEL))
