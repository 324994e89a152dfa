"""An SPC written for openbao-csi-provider v2 works unchanged, against real OpenBao.

One process serves `vault.sock` and (with `-also-serve-as=openbao`) `openbao.sock`; the
Vault address comes from `BAO_ADDR` or an `openbaoAddress` parameter; a parameter no one
reads is warned about in the log once per SecretProviderClass, by name only.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import yaml
from harness import ProviderProcess, StartProvider, VaultEnv, pod_uid, provider_env, unique
from mounts import NAMESPACE, SERVICE_ACCOUNT, app_token

from devkit import free_port
from provider.tools.driver import MountResult, ProviderCallError, ProviderClient

pytestmark = pytest.mark.integration

TARGET = "/var/lib/kubelet/pods/p/volumes/kubernetes.io~csi/secrets-store/mount"


def openbao_spc(path: str, **parameters: str) -> dict[str, str]:
    """Parameters as openbao-csi-provider v2's documentation spells them."""
    return {
        "openbaoRoleName": "app",
        "openbaoAuthMountPath": "kubernetes",
        "objects": f"- objectName: value\n  secretPath: secret/data/{path}\n  secretKey: value\n",
        **parameters,
    }


def mount_on(
    process: ProviderProcess, socket_path: Path, parameters: dict[str, str], spc: str = "bao"
) -> MountResult:
    attributes, secrets = process.payload(
        parameters, namespace=NAMESPACE, service_account=SERVICE_ACCOUNT, spc_name=spc
    )
    client = ProviderClient(socket_path, timeout_seconds=30)
    try:
        return client.mount(attributes, secrets, TARGET)
    finally:
        client.close()


@pytest.fixture
def secret(vault: VaultEnv) -> str:
    path = unique("app/openbao")
    vault.put_kv2(path, {"value": "bao-value"})
    return path


def test_one_process_serves_both_provider_names(
    vault: VaultEnv, start_provider: StartProvider, secret: str
) -> None:
    """vault.sock and openbao.sock answer; BAO_ADDR is the address; both sockets go on SIGTERM."""
    process = start_provider("-also-serve-as=openbao", vault_addr=None, env={"BAO_ADDR": vault.address})
    bao_socket = process.socket_path.with_name("openbao.sock")
    assert oct(bao_socket.stat().st_mode & 0o777) == "0o600"

    for socket_path in (process.socket_path, bao_socket):
        result = mount_on(process, socket_path, openbao_spc(secret))
        assert [(f.path, f.contents) for f in result.files] == [("value", b"bao-value")]
    assert "serving vault-csi-provider" in process.log_text()
    assert f"on {bao_socket}" in process.log_text()

    assert process.stop() == 0, process.log_text()
    assert not process.socket_path.exists()
    assert not bao_socket.exists()
    assert list(process.socket_path.parent.glob(".*.sock.*")) == []


def test_openbao_address_parameter_is_the_address(
    vault: VaultEnv, start_provider: StartProvider, secret: str
) -> None:
    """With -vault-addr pointing nowhere, openbaoAddress decides: the Mount reads from OpenBao."""
    process = start_provider(vault_addr=f"http://127.0.0.1:{free_port()}")
    result = mount_on(process, process.socket_path, openbao_spc(secret, openbaoAddress=vault.address))
    assert result.files[0].contents == b"bao-value"


def test_two_addresses_under_two_spellings_are_refused(
    vault: VaultEnv, provider: ProviderProcess, secret: str
) -> None:
    parameters = openbao_spc(secret, openbaoAddress=vault.address, vaultAddress="https://other:8200")
    with pytest.raises(ProviderCallError) as caught:
        mount_on(provider, provider.socket_path, parameters)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.message == (
        "openbaoAddress and vaultAddress are spellings of one setting with different values; keep only one"
    )


def test_unknown_parameter_is_warned_once_by_name(
    vault: VaultEnv, provider: ProviderProcess, secret: str
) -> None:
    """Three polls of an SPC with a typo: the Mounts work, and the log names the key once, not its value."""
    spc = unique("typo")
    parameters = openbao_spc(secret, vaultAdress="https://typo-value.invalid:8200")
    for _ in range(3):
        result = mount_on(provider, provider.socket_path, parameters, spc=spc)
        assert result.files[0].contents == b"bao-value"
    lines = [line for line in provider.log_text().splitlines() if f"{NAMESPACE}/{spc} has parameters" in line]
    assert len(lines) == 1, lines
    assert "vaultAdress (did you mean vaultAddress?)" in lines[0]
    assert "typo-value" not in provider.log_text()


def test_mount_tool_takes_an_openbao_class(
    vault: VaultEnv, start_provider: StartProvider, secret: str, tmp_path: Path
) -> None:
    """`vault-csi-provider mount` picks a provider: openbao class and mounts it through openbao.sock."""
    process = start_provider("-also-serve-as=openbao")
    manifest = {
        "apiVersion": "secrets-store.csi.x-k8s.io/v1",
        "kind": "SecretProviderClass",
        "metadata": {"name": "bao", "namespace": NAMESPACE},
        "spec": {"provider": "openbao", "parameters": openbao_spc(secret)},
    }
    (tmp_path / "spc.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    token = tmp_path / "jwt"
    token.write_text(app_token(process.issuer), encoding="utf-8")
    command = [sys.executable, "-m", "provider", "mount", "--spc", str(tmp_path / "spc.yaml")]
    command += ["--socket", str(process.socket_path.with_name("openbao.sock")), "--token-file", str(token)]
    command += ["--pod-namespace", NAMESPACE, "--pod-name", "app-0", "--service-account", SERVICE_ACCOUNT]
    command += ["--pod-uid", pod_uid(NAMESPACE, "app-0"), "--target", str(tmp_path / "volume")]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=60, env=provider_env(), check=False
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "volume" / "value").read_bytes() == b"bao-value"


def test_a_file_at_the_second_socket_stops_the_start_cleanly(
    start_provider: StartProvider, tmp_path: Path
) -> None:
    """A regular file at openbao.sock: no start, the file kept, and neither socket nor bind name left."""
    blocker = tmp_path / "openbao.sock"
    blocker.write_text("not a socket\n")

    process = start_provider("-also-serve-as=openbao", directory=tmp_path, wait=False)

    assert process.wait_exit(timeout=15) != 0
    assert f"{blocker} exists and is not a socket; refusing to replace it" in process.log_text()
    assert blocker.read_text() == "not a socket\n"
    assert not process.socket_path.exists()
    assert sorted(path.name for path in tmp_path.glob("*.sock*")) == ["openbao.sock"]
    assert list(tmp_path.glob(".*.sock.*")) == []


def test_a_second_socket_that_cannot_bind_leaves_nothing(
    start_provider: StartProvider, tmp_path: Path
) -> None:
    """A name too long for a unix socket path fails the start after the first bind; both names go."""
    name = "o" * 63
    assert len(str(tmp_path / f".{name}.sock.1234567")) > 108, "the path must exceed sun_path"

    process = start_provider(f"-also-serve-as={name}", directory=tmp_path, wait=False)

    assert process.wait_exit(timeout=15) != 0
    assert f"cannot listen on {tmp_path}/.{name}.sock." in process.log_text()
    assert "is its directory writable, the path at most 107 bytes?" in process.log_text()
    assert "Traceback" not in process.log_text()
    assert sorted(path.name for path in tmp_path.iterdir() if ".sock" in path.name) == []
