"""TLS to Vault through the real provider: CA files and directories, server names, mutual TLS,
failures as FAILED_PRECONDITION, and Vault on a unix socket.

Every test calls the provider over its unix socket the way the Secrets Store CSI driver
does (attributes built by `provider.tools.driver`, the driver's response checks and atomic
writer), logging in with a freshly minted service-account token; helpers are in `mounts`.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import pytest
from harness import SERVER_NAME, ProviderProcess, UnixForwarder, VaultEnv, unique
from mounts import contents, mount, mount_error, spc

from devkit import CertificateAuthority, OpenBaoServer, write_pem

pytestmark = pytest.mark.integration


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


def _swap(path: Path, content: bytes) -> None:
    """Replace a file at once, as the kubelet and cert-manager do (a new inode, never half written)."""
    staged = path.with_name(path.name + ".new")
    staged.write_bytes(content)
    staged.replace(path)


def test_a_rotated_ca_file_is_used_without_a_restart(
    provider: ProviderProcess, vault: VaultEnv, tls_places: dict[str, str], tmp_path: Path
) -> None:
    """The CA file first holds a foreign CA (TLS fails); once the right CA replaces it, Mounts work."""
    ca_file = tmp_path / "ca.pem"
    _swap(ca_file, Path(tls_places["other_ca"]).read_bytes())
    parameters = spc(
        _tls_objects(vault, "after-ca-rotation"),
        vaultAddress=tls_places["tls"],
        vaultCACertPath=str(ca_file),
        vaultTLSServerName=SERVER_NAME,
    )
    error = mount_error(provider, parameters)
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION, error.message
    assert f"TLS with Vault at {tls_places['tls']}" in error.message

    _swap(ca_file, Path(tls_places["ca"]).read_bytes())
    time.sleep(1.2)  # the files are compared at most once a second
    assert contents(mount(provider, parameters)) == {"value": b"after-ca-rotation"}
    assert "TLS files for Vault at" in provider.log_text()


def test_a_rotated_client_certificate_is_used_without_a_restart(
    provider: ProviderProcess, mtls_vault: OpenBaoServer, tmp_path: Path
) -> None:
    """mTLS: a client certificate from a CA Vault does not trust is refused; the renewed one is used."""
    assert mtls_vault.tls_address is not None
    assert mtls_vault.ca_pem_path is not None
    cert_file, key_file = tmp_path / "client.crt", tmp_path / "client.key"
    stranger = CertificateAuthority.create("not vault's").issue_client("csi-provider")
    _swap(cert_file, stranger.cert_pem)
    _swap(key_file, stranger.key_pem)
    parameters = spc(
        "- objectName: value\n  secretPath: secret/data/app/mtls\n  secretKey: value\n",
        vaultAddress=mtls_vault.tls_address,
        vaultCACertPath=str(mtls_vault.ca_pem_path),
        vaultTLSServerName=SERVER_NAME,
        vaultTLSClientCertPath=str(cert_file),
        vaultTLSClientKeyPath=str(key_file),
    )
    error = mount_error(provider, parameters)
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION, error.message

    trusted_cert, trusted_key = mtls_vault.issue_client_cert("csi-provider-renewed")
    _swap(key_file, trusted_key.read_bytes())
    _swap(cert_file, trusted_cert.read_bytes())
    time.sleep(1.2)
    assert contents(mount(provider, parameters)) == {"value": b"over-mutual-tls"}
