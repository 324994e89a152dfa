"""`format: data` and `format: files`: whole secrets without the envelope, and every key as a file.

Through the real provider process and a real OpenBao; with a target directory the files
are written by the driver-side client's atomic writer, as the driver would.
"""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import grpc
import pytest
from harness import ProviderProcess, VaultEnv, unique
from mounts import contents, mount, spc

from provider.tools.driver import DATA_DIR, ProviderCallError

pytestmark = pytest.mark.integration


def test_format_data_writes_the_kv2_data_as_go_json(provider: ProviderProcess, vault: VaultEnv) -> None:
    """format: data writes the secret's own keys (KV v2 unwrapped) as compact Go JSON, no envelope."""
    path = unique("app/format-data")
    vault.put_kv2(path, {"user": "app", "note": "<b>&", "port": 5432})
    result = mount(
        provider,
        spc(f"""
        - objectName: app.json
          secretPath: secret/data/{path}
          format: data
    """),
    )
    assert contents(result) == {"app.json": b'{"note":"\\u003cb\\u003e\\u0026","port":5432,"user":"app"}'}
    assert list(result.versions) == ["app.json"]


def test_format_files_writes_every_key_as_a_file(
    provider: ProviderProcess, vault: VaultEnv, tmp_path: Path
) -> None:
    """format: files writes each key under objectName/ with the object's mode, via the driver's writer."""
    path = unique("app/format-files")
    vault.put_kv2(path, {"username": "app", "password": "pw-1", "settings": {"b": 1, "a": True}})
    target = tmp_path / "volume"
    target.mkdir()
    result = mount(
        provider,
        spc(f"""
            - objectName: db
              secretPath: secret/data/{path}
              format: files
              filePermission: 0o640
        """),
        target_dir=target,
    )
    assert contents(result) == {
        "db/password": b"pw-1",
        "db/settings": b'{"a":true,"b":1}',
        "db/username": b"app",
    }
    assert list(result.versions) == ["db"]
    for name in ("password", "settings", "username"):
        assert stat.S_IMODE((target / DATA_DIR / "db" / name).stat().st_mode) == 0o640
    assert (target / "db" / "password").read_bytes() == b"pw-1"


def test_format_files_version_changes_with_any_key(provider: ProviderProcess, vault: VaultEnv) -> None:
    """The one version of a files object changes when any key changes, and only then."""
    path = unique("app/format-version")
    vault.put_kv2(path, {"a": "1", "b": "2"})
    parameters = spc(f"""
        - objectName: keys
          secretPath: secret/data/{path}
          format: files
    """)
    first, again = mount(provider, parameters), mount(provider, parameters)
    vault.put_kv2(path, {"a": "1", "b": "3"})
    changed = mount(provider, parameters)
    assert first.versions == again.versions
    assert changed.versions["keys"] != first.versions["keys"]


def test_format_files_decodes_each_value(provider: ProviderProcess, vault: VaultEnv) -> None:
    """encoding applies to every key's value in files mode."""
    path = unique("app/format-base64")
    vault.put_kv2(
        path, {"k1": base64.b64encode(b"\x00\x01").decode(), "k2": base64.b64encode(b"two").decode()}
    )
    result = mount(
        provider,
        spc(f"""
        - objectName: bin
          secretPath: secret/data/{path}
          format: files
          encoding: base64
    """),
    )
    assert contents(result) == {"bin/k1": b"\x00\x01", "bin/k2": b"two"}


def test_a_key_that_cannot_be_a_file_name_is_refused(provider: ProviderProcess, vault: VaultEnv) -> None:
    """A key the driver could not write as a file (here '..') fails the Mount, naming the object."""
    path = unique("app/format-bad-key")
    vault.put_kv2(path, {"..": "x", "ok": "y"})
    with pytest.raises(ProviderCallError) as caught:
        mount(
            provider,
            spc(f"""
            - objectName: bad
              secretPath: secret/data/{path}
              format: files
        """),
        )
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.message == (
        f'objects[0] "bad": GET /v1/secret/data/{path}: a key of the secret must not contain a '
        "'..' element, so it cannot be a file name"
    )


def test_format_and_secret_key_exclude_each_other(provider: ProviderProcess) -> None:
    """Asking for one key and the whole secret at once is refused before anything is fetched."""
    with pytest.raises(ProviderCallError) as caught:
        mount(
            provider,
            spc("""
            - objectName: both
              secretPath: secret/data/app/x
              secretKey: password
              format: files
        """),
        )
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.message == (
        'objects[0] "both": format files writes the whole secret; remove secretKey or format'
    )
