"""provider.serve.state_store: the sealed restart-state file, its atomic write and its distrustful read."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from provider.serve.state_store import (
    FORMAT_VERSION,
    MAX_STATE_BYTES,
    STATE_FILE,
    StateFileError,
    StateKeys,
    read_state,
    remove_stale_temporaries,
    seal,
    unseal,
    write_state,
)

KEYS = StateKeys.derive(b"h" * 32)
SECRET = b'{"password":"s3cret-database-password","token":"hvs.CAESIJ-example"}'


def test_a_sealed_file_opens_with_the_same_hmac_key() -> None:
    """Another provider with the same HMAC key (another process, after a restart) reads it back."""
    assert unseal(StateKeys.derive(b"h" * 32), seal(KEYS, SECRET)) == SECRET


def test_the_file_holds_no_plaintext_and_every_seal_differs() -> None:
    """Nothing of the secrets is visible in the bytes; a fresh nonce each time."""
    first, second = seal(KEYS, SECRET), seal(KEYS, SECRET)
    for secret in (b"s3cret-database-password", b"hvs.CAESIJ-example", b"password"):
        assert secret not in first
    assert first != second


def test_the_keys_never_show_in_a_repr() -> None:
    assert repr(KEYS) == "StateKeys()"


def _flipped(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


SEALED = seal(KEYS, SECRET)


@pytest.mark.parametrize(
    ("data", "reason", "message"),
    [
        pytest.param(b"", "truncated", "it is truncated (0 bytes)", id="empty"),
        pytest.param(SEALED[:5], "truncated", "it is truncated (5 bytes)", id="inside-the-magic"),
        pytest.param(SEALED[:12], "truncated", "it is truncated (12 bytes)", id="inside-the-key-id"),
        pytest.param(SEALED[:40], "truncated", "it is truncated (40 bytes)", id="inside-the-nonce"),
        pytest.param(
            SEALED[:-1],
            "corrupt",
            "it does not verify (corrupt, truncated or tampered with)",
            id="inside-the-tag",
        ),
        pytest.param(
            _flipped(SEALED, len(SEALED) - 30),
            "corrupt",
            "it does not verify (corrupt, truncated or tampered with)",
            id="a-flipped-ciphertext-bit",
        ),
        pytest.param(
            _flipped(SEALED, 30),
            "corrupt",
            "it does not verify (corrupt, truncated or tampered with)",
            id="a-flipped-nonce-bit",
        ),
        pytest.param(
            seal(StateKeys.derive(b"x" * 32), SECRET),
            "foreign",
            "it was written under another HMAC key",
            id="another-hmac-key",
        ),
        pytest.param(
            _flipped(SEALED, 12),
            "foreign",
            "it was written under another HMAC key",
            id="a-changed-key-id",
        ),
        pytest.param(
            seal(KEYS, SECRET, version=FORMAT_VERSION + 1),
            "version",
            f"it has format version {FORMAT_VERSION + 1}; this provider reads version {FORMAT_VERSION}",
            id="a-newer-format",
        ),
        pytest.param(
            b"\x7fELF" + SEALED[4:],
            "not-state",
            "it is not a provider state file (unknown header)",
            id="not-a-state-file",
        ),
    ],
)
def test_a_file_that_does_not_verify_is_refused_with_its_reason(
    data: bytes, reason: str, message: str
) -> None:
    with pytest.raises(StateFileError, match=f"^{re.escape(message)}$") as info:
        unseal(KEYS, data)
    assert info.value.reason == reason


def test_a_version_changed_in_place_fails_the_tag() -> None:
    """The version is part of the AAD: rewriting it to look current does not make a file readable."""
    other_version = seal(KEYS, SECRET, version=FORMAT_VERSION + 1)
    rewritten = other_version[:8] + FORMAT_VERSION.to_bytes(2, "big") + other_version[10:]
    with pytest.raises(StateFileError, match="does not verify") as info:
        unseal(KEYS, rewritten)
    assert info.value.reason == "corrupt"


def test_write_then_read_round_trips_owner_only(tmp_path: Path) -> None:
    """A missing directory is created 0700, the file is 0600, and no temporary file is left."""
    directory = tmp_path / "state"
    write_state(directory, seal(KEYS, SECRET))
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / STATE_FILE).stat().st_mode) == 0o600
    assert sorted(path.name for path in directory.iterdir()) == [STATE_FILE]
    assert read_state(directory / STATE_FILE, KEYS) == SECRET


def test_a_write_replaces_the_file(tmp_path: Path) -> None:
    write_state(tmp_path, seal(KEYS, b"first"))
    write_state(tmp_path, seal(KEYS, b"second"))
    assert read_state(tmp_path / STATE_FILE, KEYS) == b"second"
    assert sorted(path.name for path in tmp_path.iterdir()) == [STATE_FILE]


def test_only_stale_temporary_files_are_removed(tmp_path: Path) -> None:
    """A killed writer's leftover goes; one the other pod of an update is writing stays."""
    stale, fresh = tmp_path / f".{STATE_FILE}.dead.tmp", tmp_path / f".{STATE_FILE}.live.tmp"
    stale.write_bytes(b"left over")
    fresh.write_bytes(b"being written")
    os.utime(stale, (900.0, 900.0))
    os.utime(fresh, (1590.0, 1590.0))
    remove_stale_temporaries(tmp_path, older_than=600.0, now=1600.0)
    assert sorted(path.name for path in tmp_path.iterdir()) == [fresh.name]


def test_no_file_is_no_state(tmp_path: Path) -> None:
    assert read_state(tmp_path / STATE_FILE, KEYS) is None


def test_a_file_over_the_bound_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / STATE_FILE
    with path.open("wb") as file:
        file.truncate(MAX_STATE_BYTES + 1)  # sparse: no 64 MiB written
    with pytest.raises(
        StateFileError, match=f"^it is {MAX_STATE_BYTES + 1} bytes, over the {MAX_STATE_BYTES} bytes allowed$"
    ) as info:
        read_state(path, KEYS)
    assert info.value.reason == "too-big"


def test_an_unreadable_path_is_refused_not_raised(tmp_path: Path) -> None:
    """A directory where the file should be: reported as unreadable."""
    (tmp_path / STATE_FILE).mkdir()
    with pytest.raises(StateFileError, match=r"^it cannot be read: Is a directory$") as info:
        read_state(tmp_path / STATE_FILE, KEYS)
    assert info.value.reason == "unreadable"
