"""KV v1 and v2 through the real provider and OpenBao: keys, Go JSON, envelopes, versions,
path spellings, modes, nested paths, encodings.

Every test calls the provider over its unix socket the way the Secrets Store CSI driver
does (attributes built by `provider.tools.driver`, the driver's response checks and atomic
writer), logging in with a freshly minted service-account token; helpers are in `mounts`.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import grpc
import pytest
from harness import ProviderProcess, VaultEnv, unique
from mounts import contents, modes, mount, mount_error, spc

from provider.tools.driver import DATA_DIR

pytestmark = pytest.mark.integration

ENVELOPE_FIELDS = ["request_id", "lease_id", "lease_duration", "renewable", "data", "warnings"]


def test_two_keys_of_one_kv2_secret(provider: ProviderProcess, vault: VaultEnv) -> None:
    """Two objects read two keys of one KV v2 secret; strings are written raw with mode 0644."""
    path = unique("app/db")
    vault.put_kv2(path, {"username": "db-user-alice", "password": "pw with spaces & <tags>\n"})
    result = mount(
        provider,
        spc(f"""
            - objectName: username
              secretPath: secret/data/{path}
              secretKey: username
            - objectName: password
              secretPath: secret/data/{path}
              secretKey: password
        """),
    )

    assert [file.path for file in result.files] == ["username", "password"]
    assert contents(result) == {"username": b"db-user-alice", "password": b"pw with spaces & <tags>\n"}
    assert modes(result) == {"username": 0o644, "password": 0o644}
    assert set(result.versions) == {"username", "password"}
    assert result.versions["username"] != result.versions["password"]
    assert all(version and "alice" not in version for version in result.versions.values())


@pytest.mark.parametrize(
    ("engine", "raw_value", "expected"),
    [
        pytest.param(
            "kv1",
            '{"n": 1.50, "a": "<b>&"}',
            b'{"a":"\\u003cb\\u003e\\u0026","n":1.50}',
            id="map-sorted-escaped",
        ),
        pytest.param(
            "kv1",
            '{"z": {"b": [1, 2.0], "a": null}, "y": "a\\u2028b"}',
            b'{"y":"a\\u2028b","z":{"a":null,"b":[1,2.0]}}',
            id="nested-map",
        ),
        pytest.param("kv1", '[3, "x>y", true, 1E+2]', b'[3,"x\\u003ey",true,1E+2]', id="list"),
        pytest.param("kv1", "12345678901234567890", b"12345678901234567890", id="big-integer"),
        pytest.param("kv1", "0.0000001", b"0.0000001", id="small-float-as-sent"),
        pytest.param("kv2", "0.0000001", b"1e-7", id="kv2-float-as-vault-sends-it"),
        pytest.param("kv1", "false", b"false", id="boolean"),
        pytest.param("kv1", '"<raw & text> caf\\u00e9"', "<raw & text> café".encode(), id="string-raw"),
    ],
)
def test_non_string_values_are_written_as_go_json(
    provider: ProviderProcess, vault: VaultEnv, engine: str, raw_value: str, expected: bytes
) -> None:
    """Non-string values become compact Go JSON: keys sorted, <>& escaped, numbers as Vault sent them."""
    path = unique("app/json")
    if engine == "kv1":
        vault.put_raw(f"kv1/{path}", f'{{"v": {raw_value}}}')
        secret_path = f"kv1/{path}"
    else:
        vault.put_raw(f"secret/data/{path}", f'{{"data": {{"v": {raw_value}}}}}')
        secret_path = f"secret/data/{path}"
    result = mount(
        provider,
        spc(f"""
            - objectName: value.json
              secretPath: {secret_path}
              secretKey: v
        """),
    )

    assert contents(result) == {"value.json": expected}


def test_without_secret_key_the_whole_envelope_is_written(provider: ProviderProcess, vault: VaultEnv) -> None:
    """No secretKey writes Vault's whole response as upstream does: the envelope fields in Go's order."""
    path = unique("app/envelope")
    vault.put_kv2(path, {"user": "envelope-user", "count": 3})
    result = mount(
        provider,
        spc(f"""
            - objectName: whole.json
              secretPath: secret/data/{path}
        """),
    )

    raw = contents(result)["whole.json"]
    assert raw.startswith(b'{"request_id":')
    fields = json.loads(raw, object_pairs_hook=list)
    names = [name for name, _ in fields]
    assert names[:6] == ENVELOPE_FIELDS
    assert set(names[6:]) <= {"auth", "wrap_info", "mount_type"}
    envelope = dict(fields)
    assert (envelope["lease_id"], envelope["lease_duration"], envelope["renewable"]) == ("", 0, False)
    assert envelope["warnings"] is None
    data = dict(envelope["data"])
    assert dict(data["data"]) == {"count": 3, "user": "envelope-user"}
    assert dict(data["metadata"])["version"] == 1
    # Compact, in the order shown: re-encoding the parsed pairs reproduces the bytes.
    reencoded = json.dumps(json.loads(raw, object_pairs_hook=dict), separators=(",", ":"), ensure_ascii=False)
    assert reencoded.encode() == raw


def test_kv2_version_query_reads_an_older_version(provider: ProviderProcess, vault: VaultEnv) -> None:
    """`?version=1` on a KV v2 path returns the first version after a second one was written."""
    path = unique("app/versioned")
    vault.put_kv2(path, {"value": "first-version"})
    vault.put_kv2(path, {"value": "second-version"})
    result = mount(
        provider,
        spc(f"""
            - objectName: old
              secretPath: secret/data/{path}?version=1
              secretKey: value
            - objectName: current
              secretPath: secret/data/{path}
              secretKey: value
        """),
    )

    assert contents(result) == {"old": b"first-version", "current": b"second-version"}
    assert result.versions["old"] != result.versions["current"]


def test_kv1_secret_under_every_path_spelling(provider: ProviderProcess, vault: VaultEnv) -> None:
    """KV v1 values are read from `data`; /v1/x, v1/x, /x and x name the same secret."""
    path = unique("app/kv1")
    vault.put_kv1(path, {"password": "kv1-password-value"})
    spellings = {
        "plain": f"kv1/{path}",
        "slash": f"/kv1/{path}",
        "v1": f"v1/kv1/{path}",
        "full": f"/v1/kv1/{path}",
    }
    objects = "".join(
        f"- objectName: {name}\n  secretPath: {secret_path}\n  secretKey: password\n"
        for name, secret_path in spellings.items()
    )
    result = mount(provider, spc(objects))

    assert contents(result) == dict.fromkeys(spellings, b"kv1-password-value")


def test_file_permissions_and_nested_paths(
    provider: ProviderProcess, vault: VaultEnv, tmp_path: Path
) -> None:
    """filePermission as 0600, 0o600, hex, decimal or quoted sets the mode; nested names make directories."""
    path = unique("app/modes")
    vault.put_kv2(path, {"value": "mode-test-value"})
    objects = [
        ("default", None),
        ("nested/bar", "0o600"),
        ("octal", "0600"),
        ("decimal", "384"),
        ("hex", "0x1a0"),
        ("quoted", '"0640"'),
    ]
    text = "".join(
        f"- objectName: {name}\n  secretPath: secret/data/{path}\n  secretKey: value\n"
        + (f"  filePermission: {mode}\n" if mode else "")
        for name, mode in objects
    )
    volume = tmp_path / "volume"
    result = mount(provider, spc(text), target_dir=volume)

    expected = {
        "default": 0o644,
        "nested/bar": 0o600,
        "octal": 0o600,
        "decimal": 0o600,
        "hex": 0o640,
        "quoted": 0o640,
    }
    assert modes(result) == expected
    for name, mode in expected.items():
        on_disk = volume / DATA_DIR / name
        assert stat.S_IMODE(on_disk.stat().st_mode) == mode, name
        assert (volume / name).read_bytes() == b"mode-test-value"
    assert os.readlink(volume / "nested") == f"{DATA_DIR}/nested"


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        pytest.param("base64", lambda raw: base64.b64encode(raw).decode(), id="base64"),
        pytest.param("BASE64", lambda raw: base64.b64encode(raw).decode(), id="base64-upper-case"),
        pytest.param("hex", lambda raw: raw.hex(), id="hex"),
        pytest.param("Hex", lambda raw: raw.hex().upper(), id="hex-mixed-case"),
        pytest.param("utf-8", lambda raw: raw.decode("latin-1"), id="utf-8-as-is"),
    ],
)
def test_encoding_decodes_the_stored_value(
    provider: ProviderProcess, vault: VaultEnv, encoding: str, encode: Any
) -> None:
    """`encoding` decodes the value Vault holds; the file gets the decoded bytes."""
    raw = b"\x00\xff\x10binary\r\n" if encoding != "utf-8" else b"plain-text-value"
    path = unique("app/encoded")
    vault.put_kv2(path, {"blob": encode(raw)})
    result = mount(
        provider,
        spc(f"""
            - objectName: blob.bin
              secretPath: secret/data/{path}
              secretKey: blob
              encoding: {encoding}
        """),
    )

    assert contents(result) == {"blob.bin": raw}


@pytest.mark.parametrize(
    ("encoding", "stored", "problem"),
    [
        pytest.param("base64", "not*base64*SECRET-7f3a", "is not valid base64", id="base64"),
        pytest.param("base64", "c2VjcmV0LXZhbHVlMQ", "is not valid base64", id="base64-missing-padding"),
        pytest.param("hex", "zz-not-hex-SECRET-91bc", "is not valid hex", id="hex"),
    ],
)
def test_invalid_encoded_value_is_refused_without_showing_it(
    provider: ProviderProcess, vault: VaultEnv, encoding: str, stored: str, problem: str
) -> None:
    """A value that does not decode is INVALID_ARGUMENT naming object and key, never the value."""
    path = unique("app/bad-encoding")
    vault.put_kv2(path, {"blob": stored})
    error = mount_error(
        provider,
        spc(f"""
            - objectName: blob.bin
              secretPath: secret/data/{path}
              secretKey: blob
              encoding: {encoding}
        """),
    )

    assert error.code == grpc.StatusCode.INVALID_ARGUMENT, error.message
    assert 'objects[0] "blob.bin"' in error.message
    assert f'the value of key "blob" {problem}' in error.message
    assert stored not in error.message
