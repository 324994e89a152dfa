"""Mount through the real provider process against a real OpenBao: files, modes, versions, errors.

Every test calls the provider over its unix socket the way the Secrets Store CSI driver
does (attributes built by `provider.driver`, the driver's response checks and atomic
writer), logging in with a freshly minted service-account token. Secrets live under
unique paths, so all tests share one OpenBao and one provider process. The last test
reads the provider's debug log for every token and secret the module sent or received.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from harness import SERVER_NAME, ProviderProcess, UnixForwarder, VaultEnv, pod_uid, unique

from devkit import CertificateAuthority, OpenBaoServer, PostgresServer, free_port, write_pem
from devkit import vault_setup as setup
from provider.tools.driver import DATA_DIR, MountResult, ProviderCallError

pytestmark = pytest.mark.integration

NAMESPACE = "team-a"
SERVICE_ACCOUNT = "app"
ENVELOPE_FIELDS = ["request_id", "lease_id", "lease_duration", "renewable", "data", "warnings"]


def spc(objects: str, role: str = "app", **parameters: str) -> dict[str, str]:
    """SecretProviderClass parameters; `objects` is the YAML block string of the manifest."""
    return {"roleName": role, "objects": textwrap.dedent(objects).strip() + "\n", **parameters}


def mount(provider: ProviderProcess, parameters: dict[str, str], **kwargs: Any) -> MountResult:
    """Mount as pod team-a/app-0 (service account `app`) unless the caller says otherwise."""
    kwargs.setdefault("namespace", NAMESPACE)
    kwargs.setdefault("service_account", SERVICE_ACCOUNT)
    return provider.mount(parameters, **kwargs)


def mount_error(provider: ProviderProcess, parameters: dict[str, str], **kwargs: Any) -> ProviderCallError:
    with pytest.raises(ProviderCallError) as info:
        mount(provider, parameters, **kwargs)
    return info.value


def contents(result: MountResult) -> dict[str, bytes]:
    return {file.path: file.contents for file in result.files}


def modes(result: MountResult) -> dict[str, int]:
    return {file.path: file.mode for file in result.files}


@pytest.fixture(scope="module")
def dead_address() -> str:
    """An http address where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


# --- Kubernetes auth and KV -------------------------------------------------------------


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


# --- Engines that issue: PKI and database credentials -----------------------------------


def _certificate(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def _common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def _public_der(key: Any) -> bytes:
    return bytes(
        key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def test_pki_certificate_and_key_come_from_one_issuance(provider: ProviderProcess) -> None:
    """Certificate, key and CA objects with the same PUT and arguments share one issuance."""
    objects = "".join(
        f"""- objectName: {name}
  secretPath: pki/issue/web
  method: PUT
  secretArgs:
    common_name: app.example.test
    ttl: 1h
  secretKey: {key}
"""
        for name, key in (("tls.crt", "certificate"), ("tls.key", "private_key"), ("ca.crt", "issuing_ca"))
    )
    files = contents(mount(provider, spc(objects)))

    cert = _certificate(files["tls.crt"])
    key = serialization.load_pem_private_key(files["tls.key"], password=None)
    assert _common_name(cert) == "app.example.test"
    assert _public_der(key.public_key()) == _public_der(cert.public_key())
    assert cert.issuer == _certificate(files["ca.crt"]).subject


def test_pki_objects_with_different_arguments_get_different_certificates(provider: ProviderProcess) -> None:
    """Deduplication includes secretArgs: two common names give two certificates."""
    objects = "".join(
        f"""- objectName: {name}.crt
  secretPath: pki/issue/web
  method: POST
  secretArgs:
    common_name: {name}.example.test
  secretKey: certificate
"""
        for name in ("alpha", "beta")
    )
    files = contents(mount(provider, spc(objects)))

    alpha, beta = _certificate(files["alpha.crt"]), _certificate(files["beta.crt"])
    assert (_common_name(alpha), _common_name(beta)) == ("alpha.example.test", "beta.example.test")
    assert alpha.serial_number != beta.serial_number


def test_database_username_and_password_come_from_one_lease(
    provider: ProviderProcess, database: PostgresServer
) -> None:
    """Username and password of one creds path are one PostgreSQL login that works."""
    result = mount(
        provider,
        spc("""
            - objectName: db/username
              secretPath: database/creds/app
              secretKey: username
            - objectName: db/password
              secretPath: database/creds/app
              secretKey: password
        """),
    )

    files = contents(result)
    username, password = files["db/username"].decode(), files["db/password"].decode()
    assert username.startswith("v-")
    assert database.psql("SELECT current_user;", login=(username, password)) == username


# --- Other auth methods, audiences, namespaces ------------------------------------------


@pytest.mark.parametrize(
    ("role", "mount_parameter"),
    [
        pytest.param("jwt-app", {"vaultAuthMountPath": "jwt"}, id="bound-subject"),
        pytest.param("jwt-team-a", {"vaultAuthMountPath": "auth/jwt"}, id="bound-claims-auth-prefix"),
        pytest.param("jwt-app", {"vaultKubernetesMountPath": "jwt"}, id="kubernetes-mount-path-alias"),
    ],
)
def test_jwt_auth_mount(
    provider: ProviderProcess, vault: VaultEnv, role: str, mount_parameter: dict[str, str]
) -> None:
    """Login works at the jwt auth mount with the same {role, jwt} body."""
    path = unique("app/jwt")
    vault.put_kv2(path, {"value": "read-via-jwt"})
    result = mount(
        provider,
        spc(
            f"""
            - objectName: value
              secretPath: secret/data/{path}
              secretKey: value
            """,
            role=role,
            **mount_parameter,
        ),
    )

    assert contents(result) == {"value": b"read-via-jwt"}


def test_custom_audience(provider: ProviderProcess, vault: VaultEnv) -> None:
    """SPC `audience` picks the driver's token for that audience; a role expecting it accepts it."""
    path = unique("app/audience")
    vault.put_kv2(path, {"value": "custom-audience-value"})
    parameters = spc(
        f"""
        - objectName: value
          secretPath: secret/data/{path}
          secretKey: value
        """,
        role="custom-aud",
        audience="custom-aud",
    )
    result = mount(provider, parameters, audience="custom-aud")

    assert contents(result) == {"value": b"custom-audience-value"}


def test_vault_namespace(provider: ProviderProcess, vault: VaultEnv) -> None:
    """vaultNamespace logs in and reads inside that namespace; the root namespace has no such secret."""
    path = unique("app/tenant")
    setup.put_kv(vault.tenant, "secret", path, {"value": "tenant-only-value"})
    objects = f"""
        - objectName: value
          secretPath: secret/data/{path}
          secretKey: value
    """
    result = mount(provider, spc(objects, vaultNamespace="tenant"))
    outside = mount_error(provider, spc(objects))

    assert contents(result) == {"value": b"tenant-only-value"}
    assert outside.code == grpc.StatusCode.NOT_FOUND, outside.message
    assert f'objects[0] "value": nothing at /v1/secret/data/{path} (404)' in outside.message


# --- TLS and unix:// ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_places(vault: VaultEnv, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Values for the TLS tables: addresses, the right CA (file and directory), a foreign CA.

    The listener's certificate names vault.test.internal and 127.0.0.1 but not localhost,
    so https://localhost:PORT is the address whose name verification must fail.
    """
    directory = tmp_path_factory.mktemp("tls")
    ca_directory = directory / "cas"
    ca_directory.mkdir()
    shutil.copy(vault.ca_pem_path, ca_directory / "vault-ca.pem")
    other_ca = write_pem(directory / "other-ca.pem", CertificateAuthority.create("someone else").cert_pem)
    port = urlsplit(vault.tls_address).port
    return {
        "tls": vault.tls_address,
        "localhost": f"https://localhost:{port}",
        "ca": str(vault.ca_pem_path),
        "ca_dir": str(ca_directory),
        "other_ca": str(other_ca),
        "missing": str(directory / "missing.pem"),
    }


def _tls_objects(vault: VaultEnv, value: str) -> str:
    path = unique("app/tls")
    vault.put_kv2(path, {"value": value})
    return f"- objectName: value\n  secretPath: secret/data/{path}\n  secretKey: value\n"


@pytest.mark.parametrize(
    "parameters",
    [
        pytest.param(
            {"vaultAddress": "{tls}", "vaultCACertPath": "{ca}", "vaultTLSServerName": SERVER_NAME},
            id="ca-file-and-server-name",
        ),
        pytest.param({"vaultAddress": "{tls}", "vaultCACertPath": "{ca}"}, id="ip-address-in-certificate"),
        pytest.param(
            {"vaultAddress": "{tls}", "vaultCADirectory": "{ca_dir}", "vaultTLSServerName": SERVER_NAME},
            id="ca-directory",
        ),
        pytest.param({"vaultAddress": "{localhost}", "vaultSkipTLSVerify": "true"}, id="skip-verify"),
    ],
)
def test_tls_to_vault(
    provider: ProviderProcess, vault: VaultEnv, tls_places: dict[str, str], parameters: dict[str, str]
) -> None:
    """HTTPS to Vault's listener works with the SPC's CA, server name, or verification off."""
    filled = {key: value.format(**tls_places) for key, value in parameters.items()}
    result = mount(provider, spc(_tls_objects(vault, "over-tls-value"), **filled))

    assert contents(result) == {"value": b"over-tls-value"}


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        pytest.param(
            {"vaultAddress": "{localhost}", "vaultCACertPath": "{ca}"},
            ["TLS with Vault at {localhost} (from vaultAddress", "CA file {ca}", "'localhost'"],
            id="host-not-in-certificate",
        ),
        pytest.param(
            {"vaultAddress": "{tls}", "vaultCACertPath": "{ca}", "vaultTLSServerName": "other.test.internal"},
            ["TLS with Vault at {tls}", "server name other.test.internal", "'other.test.internal'"],
            id="wrong-server-name",
        ),
        pytest.param(
            {"vaultAddress": "{tls}", "vaultCACertPath": "{other_ca}", "vaultTLSServerName": SERVER_NAME},
            ["TLS with Vault at {tls}", "CA file {other_ca}", "unable to get local issuer certificate"],
            id="other-ca",
        ),
        pytest.param(
            {"vaultAddress": "{tls}", "vaultTLSServerName": SERVER_NAME},
            [
                "TLS with Vault at {tls}",
                "the system CA certificates",
                "unable to get local issuer certificate",
            ],
            id="system-cas",
        ),
        pytest.param(
            {"vaultAddress": "{tls}", "vaultCACertPath": "{missing}"},
            ["cannot set up TLS for Vault at {tls}", "CA file {missing}", "No such file or directory"],
            id="missing-ca-file",
        ),
    ],
)
def test_tls_failures_are_failed_precondition(
    provider: ProviderProcess,
    vault: VaultEnv,
    tls_places: dict[str, str],
    parameters: dict[str, str],
    expected: list[str],
) -> None:
    """A certificate that does not verify, or an unusable CA file, is FAILED_PRECONDITION saying TLS."""
    filled = {key: value.format(**tls_places) for key, value in parameters.items()}
    error = mount_error(provider, spc(_tls_objects(vault, "never-served"), **filled))

    assert error.code == grpc.StatusCode.FAILED_PRECONDITION, error.message
    for text in expected:
        assert text.format(**tls_places) in error.message


@pytest.mark.parametrize(
    "client_cert", [pytest.param(True, id="with-client-cert"), pytest.param(False, id="without")]
)
def test_mutual_tls(provider: ProviderProcess, mtls_vault: OpenBaoServer, client_cert: bool) -> None:
    """A listener demanding client certificates accepts the SPC's client cert and key; TLS fails without."""
    assert mtls_vault.tls_address is not None
    assert mtls_vault.ca_pem_path is not None
    parameters = {
        "vaultAddress": mtls_vault.tls_address,
        "vaultCACertPath": str(mtls_vault.ca_pem_path),
        "vaultTLSServerName": SERVER_NAME,
    }
    if client_cert:
        cert, key = mtls_vault.issue_client_cert("csi-provider")
        parameters |= {"vaultTLSClientCertPath": str(cert), "vaultTLSClientKeyPath": str(key)}
    objects = """
        - objectName: value
          secretPath: secret/data/app/mtls
          secretKey: value
    """
    if client_cert:
        assert contents(mount(provider, spc(objects, **parameters))) == {"value": b"over-mutual-tls"}
        return
    error = mount_error(provider, spc(objects, **parameters))
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION, error.message
    assert f"TLS with Vault at {mtls_vault.tls_address}" in error.message


def test_unix_socket_vault_address(provider: ProviderProcess, vault: VaultEnv, tmp_path: Path) -> None:
    """`vaultAddress: unix:///path` reaches Vault through a unix socket (the Agent sidecar's listener)."""
    path = unique("app/unix")
    vault.put_kv2(path, {"value": "through-unix-socket"})
    port = urlsplit(vault.address).port
    assert port is not None
    with UnixForwarder(tmp_path / "agent.sock", ("127.0.0.1", port)) as forwarder:
        result = mount(
            provider,
            spc(
                f"""
                - objectName: value
                  secretPath: secret/data/{path}
                  secretKey: value
                """,
                vaultAddress=f"unix://{forwarder.socket_path}",
            ),
        )

    assert contents(result) == {"value": b"through-unix-socket"}
    assert forwarder.connections >= 1


# --- Denials and missing secrets ----------------------------------------------------------


@pytest.mark.parametrize(
    ("namespace", "service_account", "role", "audience", "extra", "expected"),
    [
        pytest.param(
            "team-a",
            "web",
            "app",
            "vault",
            {},
            [
                'role "app" on auth mount "kubernetes"',
                "service account team-a/web",
                "service account name not authorized",
            ],
            id="other-service-account",
        ),
        pytest.param(
            "team-b",
            "app",
            "app",
            "vault",
            {},
            ["service account team-b/app", "namespace not authorized"],
            id="other-namespace",
        ),
        pytest.param(
            "team-a",
            "app",
            "app",
            "other-aud",
            {"audience": "other-aud"},
            ['role "app"', "invalid audience (aud) claim"],
            id="wrong-audience",
        ),
        pytest.param(
            "team-b",
            "app",
            "jwt-team-a",
            "vault",
            {"vaultAuthMountPath": "jwt"},
            ['auth mount "jwt"', 'claim "/kubernetes.io/namespace" does not match'],
            id="jwt-bound-claim",
        ),
    ],
)
def test_login_denied_with_vaults_reason(
    provider: ProviderProcess,
    namespace: str,
    service_account: str,
    role: str,
    audience: str,
    extra: dict[str, str],
    expected: list[str],
) -> None:
    """A login Vault refuses is PERMISSION_DENIED with Vault's reason and who tried, never the token."""
    uid = pod_uid(namespace, "app-0")
    token = provider.issuer.mint(namespace, service_account, "app-0", uid, audiences=[audience])
    objects = """
        - objectName: value
          secretPath: secret/data/app/anything
          secretKey: value
    """
    error = mount_error(
        provider,
        spc(objects, role=role, **extra),
        namespace=namespace,
        service_account=service_account,
        audience=audience,
        token=token,
    )

    assert error.code == grpc.StatusCode.PERMISSION_DENIED, error.message
    assert "login to Vault at " in error.message
    for text in expected:
        assert text in error.message
    assert token not in error.message


def test_read_outside_the_policy_is_permission_denied(provider: ProviderProcess, vault: VaultEnv) -> None:
    """A read the role's policy does not allow is PERMISSION_DENIED naming the object and path."""
    path = unique("forbidden/secret")
    vault.put_kv2(path, {"value": "not-for-app"})
    error = mount_error(
        provider,
        spc(f"""
            - objectName: forbidden
              secretPath: secret/data/{path}
              secretKey: value
        """),
    )

    assert error.code == grpc.StatusCode.PERMISSION_DENIED, error.message
    assert f'objects[0] "forbidden": GET /v1/secret/data/{path} was denied (403)' in error.message
    assert "permission denied" in error.message


def test_missing_path_is_not_found(provider: ProviderProcess) -> None:
    """Nothing at the path is NOT_FOUND naming the object and the path."""
    path = unique("app/absent")
    error = mount_error(
        provider,
        spc(f"""
            - objectName: absent
              secretPath: secret/data/{path}
              secretKey: value
        """),
    )

    assert error.code == grpc.StatusCode.NOT_FOUND, error.message
    assert f'objects[0] "absent": nothing at /v1/secret/data/{path} (404)' in error.message


def test_missing_key_is_not_found(provider: ProviderProcess, vault: VaultEnv) -> None:
    """A secret without the requested key is NOT_FOUND naming the object and the key."""
    path = unique("app/keys")
    vault.put_kv2(path, {"present": "present-value"})
    error = mount_error(
        provider,
        spc(f"""
            - objectName: wanted
              secretPath: secret/data/{path}
              secretKey: absent
        """),
    )

    assert error.code == grpc.StatusCode.NOT_FOUND, error.message
    assert 'objects[0] "wanted"' in error.message
    assert 'key "absent" does not exist' in error.message
    assert "present-value" not in error.message


# --- Rotation, versions, all-or-nothing, concurrency --------------------------------------


def _two_objects(changing: str, steady: str) -> dict[str, str]:
    return spc(f"""
        - objectName: changing
          secretPath: secret/data/{changing}
          secretKey: value
        - objectName: steady
          secretPath: secret/data/{steady}
          secretKey: value
    """)


def test_rotation_rewrites_a_changed_secret(
    provider: ProviderProcess, vault: VaultEnv, tmp_path: Path
) -> None:
    """A secret changed between two Mounts gets new content and version; the other keeps its version."""
    changing, steady = unique("app/rotating"), unique("app/steady")
    vault.put_kv2(changing, {"value": "before-rotation"})
    vault.put_kv2(steady, {"value": "never-changes"})
    volume = tmp_path / "volume"
    first = mount(provider, _two_objects(changing, steady), target_dir=volume)
    vault.put_kv2(changing, {"value": "after-rotation"})
    second = mount(provider, _two_objects(changing, steady), target_dir=volume)

    assert contents(first) == {"changing": b"before-rotation", "steady": b"never-changes"}
    assert contents(second) == {"changing": b"after-rotation", "steady": b"never-changes"}
    assert second.versions["changing"] != first.versions["changing"]
    assert second.versions["steady"] == first.versions["steady"]
    assert second.changed
    assert (volume / "changing").read_bytes() == b"after-rotation"


def test_unchanged_secrets_keep_versions_and_volume(
    provider: ProviderProcess, vault: VaultEnv, tmp_path: Path
) -> None:
    """Mounting unchanged secrets again gives identical versions (for any pod) and rewrites nothing."""
    changing, steady = unique("app/still"), unique("app/also-still")
    vault.put_kv2(changing, {"value": "still-value-1"})
    vault.put_kv2(steady, {"value": "still-value-2"})
    volume = tmp_path / "volume"
    first = mount(provider, _two_objects(changing, steady), target_dir=volume)
    data_dir = os.readlink(volume / DATA_DIR)
    second = mount(provider, _two_objects(changing, steady), target_dir=volume)
    other_pod = mount(provider, _two_objects(changing, steady), pod_name="app-1")

    assert first.changed is True
    assert second.changed is False
    assert second.versions == first.versions
    assert other_pod.versions == first.versions
    assert os.readlink(volume / DATA_DIR) == data_dir


def test_one_failing_object_fails_the_whole_mount(
    provider: ProviderProcess, vault: VaultEnv, tmp_path: Path
) -> None:
    """One failing object of three fails the Mount; nothing is written to the volume."""
    path = unique("app/partial")
    vault.put_kv2(path, {"a": "value-a", "c": "value-c"})
    volume = tmp_path / "volume"
    error = mount_error(
        provider,
        spc(f"""
            - objectName: a
              secretPath: secret/data/{path}
              secretKey: a
            - objectName: b
              secretPath: secret/data/{path}-missing
              secretKey: b
            - objectName: c
              secretPath: secret/data/{path}
              secretKey: c
        """),
        target_dir=volume,
    )

    assert error.code == grpc.StatusCode.NOT_FOUND, error.message
    assert 'objects[1] "b"' in error.message
    assert list(volume.iterdir()) == []


def test_parallel_mounts_all_succeed(provider: ProviderProcess, vault: VaultEnv) -> None:
    """Twenty Mounts from twenty pods at once all get their files."""
    path = unique("app/parallel")
    vault.put_kv2(path, {"user": "parallel-user", "password": "parallel-password"})
    parameters = spc(f"""
        - objectName: user
          secretPath: secret/data/{path}
          secretKey: user
        - objectName: password
          secretPath: secret/data/{path}
          secretKey: password
    """)
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda i: mount(provider, parameters, pod_name=f"app-{i}"), range(20)))

    assert all(contents(r) == {"user": b"parallel-user", "password": b"parallel-password"} for r in results)
    assert len({tuple(sorted(r.versions.items())) for r in results}) == 1


# --- Requests refused before any network call ---------------------------------------------

_OBJECT = "- objectName: pw\n  secretPath: secret/data/app/x\n  secretKey: password\n"


@pytest.mark.parametrize(
    ("objects", "parameters", "expected"),
    [
        pytest.param(
            "- objectName: pw\n  secretPath: secret/data/app/x\n  secretkey: password\n",
            {},
            ["objects[0] \"pw\": unknown key 'secretkey' (did you mean 'secretKey'?"],
            id="unknown-object-key",
        ),
        pytest.param(
            _OBJECT + "  method: DELETE\n",
            {},
            ["objects[0] \"pw\": method 'DELETE' is not allowed"],
            id="delete-method",
        ),
        pytest.param(
            _OBJECT + "  filePermission: 01777\n",
            {},
            ["objects[0] \"pw\": filePermission '01777' is outside 0 to 0777"],
            id="file-permission-too-big",
        ),
        pytest.param(
            _OBJECT + "  encoding: rot13\n",
            {},
            ["objects[0] \"pw\": encoding 'rot13' is not one of utf-8, base64, hex"],
            id="unknown-encoding",
        ),
        pytest.param(
            "- objectName: ../escape\n  secretPath: secret/data/app/x\n",
            {},
            ["objects[0] \"../escape\": objectName must not contain a '..' element"],
            id="dot-dot-object-name",
        ),
        pytest.param(
            _OBJECT + _OBJECT,
            {},
            ['objectName "pw" is used by objects[0], objects[1]'],
            id="duplicate-object-name",
        ),
        pytest.param(
            "- objectName: pw\n  secretPath: https://vault.example/v1/secret/data/x\n",
            {},
            ['objects[0] "pw": secretPath must be a path inside Vault'],
            id="secret-path-is-a-url",
        ),
        pytest.param(
            "- objectName: pw\n  secretPath: secret/data/x\n  secretkey: a\n"
            "- objectName: other\n  method: LIST\n",
            {},
            [
                "objects[0] \"pw\": unknown key 'secretkey'",
                "objects[1] \"other\": method 'LIST' is not allowed",
            ],
            id="every-problem-at-once",
        ),
        pytest.param("", {}, ["objects is empty"], id="no-objects"),
        pytest.param(_OBJECT, {"roleName": None}, ["roleName is required"], id="no-role"),
        pytest.param(
            _OBJECT,
            {"vaultAuthMountPath": "jwt", "vaultKubernetesMountPath": "kubernetes"},
            ["set only one of vaultAuthMountPath and vaultKubernetesMountPath"],
            id="both-mount-aliases",
        ),
        pytest.param(
            _OBJECT,
            {"vaultSkipTLSVerify": "yes"},
            ["vaultSkipTLSVerify 'yes' is not a boolean"],
            id="skip-verify-not-boolean",
        ),
        pytest.param(
            _OBJECT,
            {"vaultTLSClientCertPath": "/etc/client.crt"},
            ["vaultTLSClientCertPath and vaultTLSClientKeyPath must be set together"],
            id="client-cert-without-key",
        ),
        pytest.param(
            _OBJECT,
            {"vaultAddress": "ftp://vault.example:8200"},
            [
                "Vault address ftp://vault.example:8200 (from vaultAddress in the SecretProviderClass)",
                "must start with https://, http:// or unix://",
            ],
            id="address-scheme",
        ),
    ],
)
def test_bad_request_is_invalid_argument_before_any_network_call(
    provider: ProviderProcess,
    dead_address: str,
    objects: str,
    parameters: dict[str, str | None],
    expected: list[str],
) -> None:
    """A wrong SPC is INVALID_ARGUMENT naming the object or field, even when Vault is unreachable."""
    request = spc(objects, vaultAddress=dead_address)
    for key, value in parameters.items():
        if value is None:
            request.pop(key)
        else:
            request[key] = value
    error = mount_error(provider, request)

    assert error.code == grpc.StatusCode.INVALID_ARGUMENT, error.message
    for text in expected:
        assert text in error.message


@pytest.mark.parametrize(
    ("token_audience", "expected"),
    [
        pytest.param(
            "vault", 'no service-account token for audience "custom-aud" (present: "vault")', id="other"
        ),
        pytest.param(None, "no service-account token in the request", id="no-token-requests"),
    ],
)
def test_no_token_for_the_audience(
    provider: ProviderProcess, dead_address: str, token_audience: str | None, expected: str
) -> None:
    """Without a driver token for the SPC's audience the Mount is INVALID_ARGUMENT naming tokenRequests."""
    parameters = spc(_OBJECT, role="custom-aud", audience="custom-aud", vaultAddress=dead_address)
    error = mount_error(provider, parameters, audience=token_audience)

    assert error.code == grpc.StatusCode.INVALID_ARGUMENT, error.message
    assert expected in error.message
    assert "tokenRequests" in error.message


# --- The log ---------------------------------------------------------------------------------


def test_log_never_shows_tokens_or_secrets(provider: ProviderProcess, vault: VaultEnv) -> None:
    """The debug log has a line per Mount but no token, secret value, secretArgs value or content.

    Runs last in this module: it checks every token sent and every file returned so far,
    plus its own Mounts that succeed and fail with the values at hand.
    """
    path = unique("app/planted")
    planted_value = unique("planted-secret-value")
    planted_bad_base64 = unique("planted*undecodable")
    planted_name = unique("planted-cn")
    vault.put_kv2(path, {"value": planted_value, "blob": planted_bad_base64})
    mount(
        provider,
        spc(f"""
            - objectName: value
              secretPath: secret/data/{path}
              secretKey: value
            - objectName: cert.key
              secretPath: pki/issue/web
              method: PUT
              secretArgs:
                common_name: {planted_name}.example.test
              secretKey: private_key
        """),
    )
    mount_error(
        provider,
        spc(f"- objectName: blob\n  secretPath: secret/data/{path}\n  secretKey: blob\n  encoding: base64\n"),
    )
    mount_error(
        provider, spc(f"- objectName: value\n  secretPath: secret/data/{path}\n"), service_account="web"
    )
    mount_error(
        provider,
        spc(
            "- objectName: cert\n  secretPath: pki/issue/web\n  method: PUT\n  secretKey: certificate\n"
            f"  secretArgs:\n    common_name: {planted_name}.not-allowed.test\n"
        ),
    )

    log = provider.log_path.read_bytes()
    assert b"mount pod=team-a/app-0 spc=app-secrets objects=2" in log
    leaked = [token for token in provider.tokens if token.encode() in log]
    assert leaked == [], "a service-account token reached the log"
    for value in (planted_value, planted_bad_base64, planted_name):
        assert value.encode() not in log, value
    # Long enough not to match ordinary words of a log line by chance.
    secrets_seen = [content for content in provider.contents if len(content) >= 12]
    assert secrets_seen
    assert [content for content in secrets_seen if content in log] == []
