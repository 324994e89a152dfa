"""The provider as a process: Version, its socket, flags and environment, keys, and shutdown.

Each test that needs its own flags, environment or endpoint starts another real
`python -m provider` process next to the session's one.
"""

from __future__ import annotations

import socket
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from harness import ProviderProcess, StartProvider, VaultEnv, unique

from devkit import JsonHttpServer, StubRequest, StubResponse, free_port
from provider import PROVIDER_NAME, __version__
from provider.tools.driver import MountResult, ProviderCallError

pytestmark = pytest.mark.integration

NAMESPACE = "team-a"
SERVICE_ACCOUNT = "app"


def _parameters(path: str, **extra: str) -> dict[str, str]:
    objects = f"- objectName: value\n  secretPath: secret/data/{path}\n  secretKey: value\n"
    return {"roleName": "app", "objects": objects, **extra}


def _mount(process: ProviderProcess, parameters: dict[str, str]) -> MountResult:
    return process.mount(parameters, namespace=NAMESPACE, service_account=SERVICE_ACCOUNT)


def test_version_answers_the_driver(provider: ProviderProcess) -> None:
    """Version echoes v1alpha1 and names the runtime."""
    assert provider.version() == ("v1alpha1", PROVIDER_NAME, __version__)
    assert PROVIDER_NAME == "vault-csi-provider"


def test_socket_is_owner_only(provider: ProviderProcess) -> None:
    """The endpoint is a unix socket with mode 0600."""
    info = provider.socket_path.lstat()

    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o600


def test_versions_agree_across_processes_sharing_the_key(
    provider: ProviderProcess, vault: VaultEnv, start_provider: StartProvider
) -> None:
    """Two processes with the same -hmac-key-file give identical versions; another key gives others."""
    path = unique("app/shared-key")
    vault.put_kv2(path, {"value": "same-everywhere"})
    same_key = start_provider(key_file=provider.key_file)
    other_key = start_provider()

    first = _mount(provider, _parameters(path))
    second = _mount(same_key, _parameters(path))
    third = _mount(other_key, _parameters(path))

    assert first.files == second.files == third.files
    assert second.versions == first.versions
    assert third.versions["value"] != first.versions["value"]


@pytest.mark.parametrize(
    ("env_addr", "flag_addr", "spc_addr", "failure"),
    [
        pytest.param("vault", None, None, None, id="environment-alone"),
        pytest.param("dead", "vault", None, None, id="flag-over-environment"),
        pytest.param(None, "dead", "vault", None, id="spc-over-flag"),
        pytest.param("dead", "dead", "vault", None, id="spc-over-flag-and-environment"),
        pytest.param("vault", "dead", None, "(from the -vault-addr flag)", id="flag-wins-even-when-wrong"),
        pytest.param("dead", None, None, "(from VAULT_ADDR)", id="environment-used-when-no-flag"),
    ],
)
def test_vault_address_precedence(
    vault: VaultEnv,
    start_provider: StartProvider,
    env_addr: str | None,
    flag_addr: str | None,
    spc_addr: str | None,
    failure: str | None,
) -> None:
    """The Vault address comes from the SPC over the -vault-addr flag over VAULT_ADDR."""
    addresses = {"vault": vault.address, "dead": f"http://127.0.0.1:{free_port()}", None: None}
    env = {"VAULT_ADDR": addresses[env_addr]} if env_addr else {}
    process = start_provider(vault_addr=addresses[flag_addr], env=env)
    path = unique("app/precedence")
    vault.put_kv2(path, {"value": "precedence-value"})
    parameters = _parameters(path, **({"vaultAddress": addresses[spc_addr]} if spc_addr else {}))

    if failure is None:
        assert _mount(process, parameters).files[0].contents == b"precedence-value"
        return
    with pytest.raises(ProviderCallError) as info:
        _mount(process, parameters)
    assert info.value.code == grpc.StatusCode.UNAVAILABLE, info.value.message
    assert f"cannot reach Vault at {addresses['dead']} {failure}" in info.value.message


def test_vault_mount_flag_is_the_default_auth_mount(vault: VaultEnv, start_provider: StartProvider) -> None:
    """-vault-mount=jwt is the login mount unless the SPC names another with vaultAuthMountPath."""
    process = start_provider("-vault-mount=jwt")
    path = unique("app/auth-mount")
    vault.put_kv2(path, {"value": "auth-mount-value"})

    via_flag = _mount(process, _parameters(path) | {"roleName": "jwt-app"})
    via_spc = _mount(process, _parameters(path, vaultAuthMountPath="kubernetes"))
    with pytest.raises(ProviderCallError) as info:
        _mount(process, _parameters(path))  # role "app" exists only on the kubernetes mount

    assert via_flag.files[0].contents == via_spc.files[0].contents == b"auth-mount-value"
    assert info.value.code == grpc.StatusCode.PERMISSION_DENIED, info.value.message
    assert 'with role "app" on auth mount "jwt"' in info.value.message


class SlowVault(JsonHttpServer):
    """A Vault stand-in whose login takes `delay` seconds; `login_started` is set when one arrives."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.login_started = threading.Event()
        self.add_route("POST", r"/v1/auth/kubernetes/login", self._login)
        self.add_route("GET", r"/v1/secret/data/slow", self._read)

    def _login(self, request: StubRequest) -> StubResponse:
        self.login_started.set()
        time.sleep(self.delay)
        auth = {"client_token": "s.slow-token", "lease_duration": 600, "renewable": True, "policies": ["app"]}
        return StubResponse(200, {"request_id": "login", "auth": auth})

    def _read(self, request: StubRequest) -> StubResponse:
        data: dict[str, Any] = {"data": {"value": "slow-value"}, "metadata": {"version": 1}}
        return StubResponse(200, {"request_id": "read", "lease_id": "", "lease_duration": 0, "data": data})


def test_sigterm_lets_an_in_flight_mount_finish(start_provider: StartProvider) -> None:
    """SIGTERM during a Mount: the Mount completes, then the process exits 0 and removes its socket."""
    with SlowVault(delay=1.0) as slow:
        process = start_provider("-shutdown-grace=10s", vault_addr=slow.url)
        with ThreadPoolExecutor(max_workers=1) as pool:
            in_flight = pool.submit(_mount, process, _parameters("slow"))
            assert slow.login_started.wait(timeout=10)
            process.terminate()
            result = in_flight.result(timeout=20)
        code = process.wait_exit()

    assert result.files[0].contents == b"slow-value"
    assert code == 0, process.log_text()
    assert not process.socket_path.exists()


def test_stale_socket_is_replaced(start_provider: StartProvider, tmp_path: Path) -> None:
    """A socket left by a crashed provider at the endpoint is replaced by the new one."""
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "vault.sock"))
    stale.close()  # closing does not remove the file: exactly what a crash leaves behind

    process = start_provider(directory=tmp_path)

    assert process.version()[0] == "v1alpha1"
    assert "replaced an older socket" in process.log_text()
    assert process.stop() == 0
    assert not process.socket_path.exists()


def test_regular_file_at_the_endpoint_is_left_alone(start_provider: StartProvider, tmp_path: Path) -> None:
    """A regular file at the endpoint makes the provider refuse to start and keeps the file."""
    endpoint = tmp_path / "vault.sock"
    endpoint.write_text("not a socket\n")

    process = start_provider(directory=tmp_path, wait=False)
    code = process.wait_exit(timeout=15)

    assert code != 0
    assert f"{endpoint} exists and is not a socket; refusing to replace it" in process.log_text()
    assert endpoint.read_text() == "not a socket\n"
