"""What users asked for, through the real provider and OpenBao: optional objects, raw answers, nested
values, no silent empty volume, upstream's path cleaning, -audience, and no userinfo in vaultAddress.

Helpers are in `mounts`; the roles' policy (backend_fixtures) reads secret/data/app/* but not
secret/data/forbidden/*.
"""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
import requests
from harness import ProviderProcess, StartProvider, VaultEnv, unique
from mounts import app_token, contents, mount, mount_error, spc

from devkit import ServiceAccountTokenIssuer

pytestmark = pytest.mark.integration


# --- optional objects -------------------------------------------------------------------------


def test_an_optional_object_whose_secret_is_missing_writes_no_file_until_it_appears(
    start_provider: StartProvider, vault: VaultEnv, tmp_path: Path
) -> None:
    """A 404 on an optional object: no file, the version "absent", audit source "absent"; the next poll
    after the secret is written brings the file."""
    audit_log = tmp_path / "audit.jsonl"
    process = start_provider(f"-audit-log={audit_log}", "-audit-unchanged=full")
    present, later = unique("app/present"), unique("app/later")
    vault.put_kv2(present, {"value": "here"})
    parameters = spc(f"""
        - objectName: present
          secretPath: secret/data/{present}
          secretKey: value
        - objectName: later
          secretPath: secret/data/{later}
          secretKey: value
          optional: true
    """)
    first = mount(process, parameters)
    assert contents(first) == {"present": b"here"}
    assert first.versions["later"] == "absent"
    assert mount(process, parameters).versions == first.versions

    vault.put_kv2(later, {"value": "arrived"})
    arrived = mount(process, parameters)
    assert contents(arrived) == {"present": b"here", "later": b"arrived"}
    assert arrived.versions["later"] not in ("absent", "")
    assert arrived.versions["present"] == first.versions["present"]
    sources = [
        [(o["name"], o["source"]) for o in json.loads(line)["objects"]]
        for line in audit_log.read_text().splitlines()
    ]
    assert sources[0] == [("present", "new"), ("later", "absent")]
    assert sources[-1] == [("present", "new"), ("later", "new")]


def test_an_optional_object_still_fails_on_anything_but_a_404(provider: ProviderProcess) -> None:
    """Permission denied is not absence: the Mount fails, naming the object."""
    failure = mount_error(
        provider,
        spc(f"""
            - objectName: secret
              secretPath: secret/data/forbidden/{unique("x")}
              secretKey: value
              optional: true
        """),
    )
    assert failure.code == grpc.StatusCode.PERMISSION_DENIED
    assert failure.message.startswith('objects[0] "secret": GET /v1/secret/data/forbidden/')
    assert "was denied (403): permission denied" in failure.message


def test_a_required_object_sharing_the_missing_secret_fails_the_mount(
    provider: ProviderProcess, vault: VaultEnv
) -> None:
    """optional belongs to an object: a required object reading the same missing secret still fails."""
    missing = unique("app/missing")
    failure = mount_error(
        provider,
        spc(f"""
            - objectName: maybe
              secretPath: secret/data/{missing}
              secretKey: value
              optional: true
            - objectName: needed
              secretPath: secret/data/{missing}
              secretKey: value
        """),
    )
    assert failure.code == grpc.StatusCode.NOT_FOUND
    assert failure.message == f'objects[1] "needed": nothing at /v1/secret/data/{missing} (404)'


# --- raw answers, nested values, empty volumes ---------------------------------------------------


def test_a_raw_pem_answer_is_written_as_it_came(provider: ProviderProcess, vault: VaultEnv) -> None:
    """pki/ca/pem answers PEM, not JSON: without secretKey the file is the answer, byte for byte."""
    expected = requests.get(f"{vault.address}/v1/pki/ca/pem", timeout=10).content
    assert expected.startswith(b"-----BEGIN CERTIFICATE-----")
    result = mount(provider, spc("- objectName: ca.pem\n  secretPath: pki/ca/pem\n"))
    assert contents(result) == {"ca.pem": expected}


def test_a_raw_answer_with_a_secret_key_is_a_clear_invalid_argument(provider: ProviderProcess) -> None:
    failure = mount_error(
        provider, spc("- objectName: ca.pem\n  secretPath: pki/ca/pem\n  secretKey: certificate\n")
    )
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.message == (
        'objects[0] "ca.pem": Vault answered GET /v1/pki/ca/pem with a body that is not JSON (such as PEM), '
        'so secretKey "certificate" cannot be taken from it; remove it to write the answer as it came'
    )


def test_secret_key_pointer_selects_a_nested_value(provider: ProviderProcess, vault: VaultEnv) -> None:
    """A JSON Pointer reaches below the top level (maps, lists); a literal dotted secretKey stays literal."""
    path = unique("app/nested")
    vault.put_kv2(
        path,
        {"config": {"db": {"password": "p@ss", "ports": [5432, 5433]}, "a/b": "slash"}, "a.b": "dotted"},
    )
    result = mount(
        provider,
        spc(f"""
            - objectName: password
              secretPath: secret/data/{path}
              secretKeyPointer: /config/db/password
            - objectName: port
              secretPath: secret/data/{path}
              secretKeyPointer: /config/db/ports/1
            - objectName: slash
              secretPath: secret/data/{path}
              secretKeyPointer: /config/a~1b
            - objectName: dotted
              secretPath: secret/data/{path}
              secretKey: a.b
        """),
    )
    assert contents(result) == {"password": b"p@ss", "port": b"5433", "slash": b"slash", "dotted": b"dotted"}
    failure = mount_error(
        provider,
        spc(f"- objectName: x\n  secretPath: secret/data/{path}\n  secretKeyPointer: /config/db/user\n"),
    )
    assert failure.code == grpc.StatusCode.NOT_FOUND
    assert failure.message == (
        f'objects[0] "x": GET /v1/secret/data/{path}: secretKeyPointer: "/config/db" is a map without "user"'
    )


def test_format_files_on_a_secret_without_keys_is_not_a_silent_empty_volume(
    provider: ProviderProcess, vault: VaultEnv
) -> None:
    path = unique("app/empty")
    vault.put_kv2(path, {})
    failure = mount_error(
        provider, spc(f"- objectName: app\n  secretPath: secret/data/{path}\n  format: files\n")
    )
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.message == (
        f'the volume would be empty: objects[0] "app" (format: files) found no keys in '
        f"GET /v1/secret/data/{path}; add keys to the secret"
    )


# --- paths as upstream cleans them, the audience default, userinfo -----------------------------


@pytest.mark.parametrize(
    "spelling", ["secret/data/{path}/", "secret//data/{path}", "/v1//secret/data//{path}//"]
)
def test_paths_are_cleaned_as_upstreams_client_cleans_them(
    provider: ProviderProcess, vault: VaultEnv, spelling: str
) -> None:
    """A trailing slash got OpenBao's 500 and a double slash its redirect; Go's path.Join cleans both."""
    path = unique("app/clean")
    vault.put_kv2(path, {"value": "clean"})
    secret_path = spelling.format(path=path)
    if secret_path.startswith("/v1//"):
        # A leading '//' after /v1 reads as a URL and stays refused; the inner ones are cleaned.
        failure = mount_error(
            provider, spc(f"- objectName: v\n  secretPath: '{secret_path}'\n  secretKey: value\n")
        )
        assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
        assert failure.message.endswith("must be a path inside Vault (like secret/data/app), not a URL")
        return
    result = mount(provider, spc(f"- objectName: v\n  secretPath: '{secret_path}'\n  secretKey: value\n"))
    assert contents(result) == {"v": b"clean"}


def test_the_audience_flag_picks_the_token_of_classes_without_one(
    start_provider: StartProvider, vault: VaultEnv, issuer: ServiceAccountTokenIssuer
) -> None:
    """With -audience=vault the vault token is used even when the driver also passes another audience's;
    with -audience=custom-aud a class without `audience` logs in with that token, which the role refuses."""
    path = unique("app/aud")
    vault.put_kv2(path, {"value": "aud"})
    parameters = spc(f"- objectName: v\n  secretPath: secret/data/{path}\n  secretKey: value\n")
    other = start_provider("-audience=custom-aud")
    failure = mount_error(
        other, parameters, token=app_token(issuer, audience="custom-aud"), audience="custom-aud"
    )
    assert failure.code == grpc.StatusCode.PERMISSION_DENIED
    assert "was denied (HTTP 403)" in failure.message
    assert contents(mount(other, {**parameters, "audience": "vault"})) == {"v": b"aud"}


def test_a_vault_address_with_userinfo_is_refused_before_any_request(provider: ProviderProcess) -> None:
    password = unique("planted-password")
    failure = mount_error(
        provider,
        {
            **spc("- objectName: v\n  secretPath: secret/data/app/x\n"),
            "vaultAddress": f"http://u:{password}@127.0.0.1:1",
        },
    )
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.message == (
        "vaultAddress http://[redacted]@127.0.0.1:1 (from vaultAddress in the SecretProviderClass) carries a "
        "user name or password; remove the user:password@ part (Vault authenticates the pod by its "
        "service-account token)"
    )
    assert password not in provider.log_text()
