"""`vault-csi-provider lint --vault`: SecretProviderClasses tried against a real OpenBao, nothing written.

A class is tried with a Vault token, or by logging in with a service-account JWT as
its role. The evidence that nothing was issued comes from OpenBao itself: its PKI
certificate list, its database leases and the login token's accessor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hvac.exceptions
import pytest
import yaml
from harness import VaultEnv, pod_uid, unique

from devkit import PostgresServer, ServiceAccountTokenIssuer
from provider.tools.lint import main

pytestmark = pytest.mark.integration


def spc_file(tmp_path: Path, objects: str, **parameters: str) -> str:
    document = {
        "apiVersion": "secrets-store.csi.x-k8s.io/v1",
        "kind": "SecretProviderClass",
        "metadata": {"name": "app", "namespace": "team-a"},
        "spec": {"provider": "vault", "parameters": {"roleName": "app", "objects": objects, **parameters}},
    }
    path = tmp_path / "spc.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return str(path)


def lint(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out.splitlines() + captured.err.splitlines()


def app_token(vault: VaultEnv, tmp_path: Path) -> str:
    """A file holding a fresh token with the app policy, as CI would be given."""
    token = vault.root.auth.token.create(policies=["app"], ttl="10m")["auth"]["client_token"]
    path = tmp_path / "token"
    path.write_text(token + "\n", encoding="utf-8")
    return str(path)


def certificates(vault: VaultEnv) -> list[str]:
    keys: list[str] = vault.root.adapter.list("/v1/pki/certs")["data"]["keys"]
    return keys


def database_leases(vault: VaultEnv) -> list[str]:
    try:
        keys: list[str] = vault.root.adapter.list("/v1/sys/leases/lookup/database/creds/app/")["data"]["keys"]
    except hvac.exceptions.InvalidPath:
        return []
    return keys


def test_good_class_reads_kv_and_only_checks_writes_and_credentials(
    vault: VaultEnv, database: PostgresServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """KV reads are made and extracted; the PKI issue and the database read are permission checks only."""
    path = unique("app/lint")
    vault.put_kv2(path, {"password": "lint-secret-value", "user": "app"})
    objects = (
        f"- objectName: password\n  secretPath: secret/data/{path}\n  secretKey: password\n"
        f"- objectName: app.env\n  template: |\n"
        f'    {{{{ with secret "secret/data/{path}" }}}}USER={{{{ .Data.data.user }}}}{{{{ end }}}}\n'
        "- objectName: cert\n  secretPath: pki/issue/web\n  method: PUT\n"
        "  secretArgs: {common_name: lint.example.test}\n"
        "- objectName: db-user\n  secretPath: database/creds/app\n  secretKey: username\n"
    )
    spc = spc_file(tmp_path, objects)
    before = (certificates(vault), database_leases(vault))

    code, lines = lint(capsys, "--vault", vault.address, "--token-file", app_token(vault, tmp_path), spc)

    assert code == 0, lines
    where = f"{spc}: document 1 (SecretProviderClass/app)"
    assert lines == [
        f"{where}: ok",
        f'{where}: objects[2] "cert": permitted, not fetched (PUT /v1/pki/issue/web is a write, '
        "which may issue a secret)",
        f'{where}: objects[3] "db-user": permitted, not fetched (GET /v1/database/creds/app is a read '
        "of a database engine, which may issue a secret)",
        f"{where}: --vault: ok (with the given token; 1 reads; 2 of 4 objects fetched and extracted)",
    ]
    assert (certificates(vault), database_leases(vault)) == before
    assert "lint-secret-value" not in "\n".join(lines)


def test_problems_are_found_with_vaults_answers(
    vault: VaultEnv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing secret, a missing key, a template key, and a path the policy denies: each one line."""
    path = unique("app/lint-bad")
    vault.put_kv2(path, {"password": "lint-bad-value"})
    objects = (
        f"- objectName: gone\n  secretPath: secret/data/{path}-missing\n  secretKey: x\n"
        f"- objectName: no-key\n  secretPath: secret/data/{path}\n  secretKey: passwd\n"
        f"- objectName: tpl\n  template: |\n"
        f'    {{{{ with secret "secret/data/{path}" }}}}\n    {{{{ .Data.data.user }}}}{{{{ end }}}}\n'
        "- objectName: denied\n  secretPath: secret/data/other/x\n"
    )
    spc = spc_file(tmp_path, objects)

    code, lines = lint(capsys, "--vault", vault.address, "--token-file", app_token(vault, tmp_path), spc)

    where = f"{spc}: document 1 (SecretProviderClass/app)"
    assert code == 1
    assert lines == [
        f"{where}: ok",
        f'{where}: objects[0] "gone": nothing at /v1/secret/data/{path}-missing (404)',
        f'{where}: objects[3] "denied": GET /v1/secret/data/other/x: the token\'s policies do not allow it '
        "(capabilities: deny; needs read)",
        f'{where}: objects[1] "no-key": GET /v1/secret/data/{path}: key "passwd" does not exist in the '
        "secret (it has 1 keys)",
        f'{where}: objects[2] "tpl": template line 2, column 1: map has no entry for key "user"',
    ]
    assert "lint-bad-value" not in "\n".join(lines)


def test_jwt_login_as_the_role_and_the_token_is_revoked(
    vault: VaultEnv, issuer: ServiceAccountTokenIssuer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--jwt-file logs in as the class's role like its pods; the token is revoked when done."""
    path = unique("app/lint-jwt")
    vault.put_kv2(path, {"a": "1"})
    spc = spc_file(tmp_path, f"- objectName: a\n  secretPath: secret/data/{path}\n  secretKey: a\n")
    jwt = tmp_path / "jwt"
    jwt.write_text(issuer.mint("team-a", "app", "lint", pod_uid("team-a", "lint")), encoding="utf-8")
    accessors_before = set(accessors(vault))

    code, lines = lint(capsys, "--vault", vault.address, "--jwt-file", str(jwt), spc)

    assert code == 0, lines
    assert lines[-1].endswith(
        '--vault: ok (logged in as role "app"; 1 reads; 1 of 1 objects fetched and extracted)'
    )
    assert set(accessors(vault)) == accessors_before


def test_jwt_of_another_service_account_is_denied(
    vault: VaultEnv, issuer: ServiceAccountTokenIssuer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spc = spc_file(tmp_path, "- objectName: a\n  secretPath: secret/data/app/x\n")
    jwt = tmp_path / "jwt"
    token = issuer.mint("team-a", "intruder", "lint", pod_uid("team-a", "lint"))
    jwt.write_text(token, encoding="utf-8")

    code, lines = lint(capsys, "--vault", vault.address, "--jwt-file", str(jwt), spc)

    assert code == 1
    assert lines[-1] == (
        f"{spc}: document 1 (SecretProviderClass/app): --vault: login to Vault at {vault.address} "
        '(from the -vault-addr flag) with role "app" on auth mount "kubernetes" as service account '
        "team-a/intruder was denied (HTTP 403): service account name not authorized"
    )
    assert token not in "\n".join(lines)


def test_a_token_that_does_not_work(
    vault: VaultEnv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spc = spc_file(tmp_path, "- objectName: a\n  secretPath: secret/data/app/x\n")
    token = tmp_path / "token"
    token.write_text("s.not-a-real-token-4f1d", encoding="utf-8")

    code, lines = lint(capsys, "--vault", vault.address, "--token-file", str(token), spc)

    assert code == 1
    assert lines[-1].startswith(
        f"{spc}: document 1 (SecretProviderClass/app): --vault: the given token does not work: "
    )
    assert "403" in lines[-1]
    assert "not-a-real-token" not in "\n".join(lines)


def test_a_token_that_may_not_ask_its_capabilities(
    vault: VaultEnv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the default policy's sys/capabilities-self, the dry run says so and stops."""
    vault.root.sys.create_or_update_policy(
        name="lint-no-capabilities", policy='path "auth/token/lookup-self" { capabilities = ["read"] }'
    )
    created = vault.root.auth.token.create(
        policies=["app", "lint-no-capabilities"], no_default_policy=True, ttl="10m"
    )
    token = tmp_path / "token"
    token.write_text(created["auth"]["client_token"], encoding="utf-8")
    spc = spc_file(tmp_path, "- objectName: a\n  secretPath: secret/data/app/x\n")

    code, lines = lint(capsys, "--vault", vault.address, "--token-file", str(token), spc)

    assert code == 1
    assert lines[-1].startswith(
        f"{spc}: document 1 (SecretProviderClass/app): --vault: cannot ask for the token's capabilities: "
    )
    assert "403" in lines[-1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--vault", "http://127.0.0.1:1"], "--vault needs --jwt-file, --token-file or VAULT_TOKEN"
        ),
        pytest.param(["--token-file", "t"], "--token-file and --jwt-file need --vault ADDRESS"),
    ],
)
def test_usage_errors(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    spc = spc_file(tmp_path, "- objectName: a\n  secretPath: secret/data/app/x\n")
    code, lines = lint(capsys, *args, spc)
    assert code == 2
    assert lines[-1].endswith(f"error: {message}")


def accessors(vault: VaultEnv) -> list[str]:
    keys: list[str] = vault.root.adapter.list("/v1/auth/token/accessors")["data"]["keys"]
    return keys
