"""The provider's unix socket during start, hand-over and exit (beyond test_provider_process.py).

The socket lives on a hostPath that the driver and, during a DaemonSet update, the next
provider pod share. These tests start real processes on one endpoint: the socket is
never reachable by others (not even for an instant), its private bind name never stays
behind, a second provider taking over the path leaves the first one's in-flight Mount
alone, and the first one's exit leaves the second's socket in place.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from fault_proxy import LOGIN, FaultProxy, Hang, Slow
from harness import (
    ProviderProcess,
    StartProvider,
    VaultEnv,
    provider_argv,
    provider_env,
    unique,
    write_key_file,
)

from devkit import ServiceAccountTokenIssuer
from provider.tools.driver import MountResult
from provider.v1alpha1 import service_pb2, service_pb2_grpc

pytestmark = pytest.mark.integration

NAMESPACE = "team-a"
SERVICE_ACCOUNT = "app"


@pytest.fixture(scope="module")
def secret_path(vault: VaultEnv) -> str:
    path = unique("app/socket")
    vault.put_kv2(path, {"value": "socket-value"})
    return path


@pytest.fixture
def proxy(vault: VaultEnv) -> Iterator[FaultProxy]:
    with FaultProxy(vault.address) as fault_proxy:
        yield fault_proxy


def parameters(secret_path: str) -> dict[str, str]:
    objects = f"- objectName: value\n  secretPath: secret/data/{secret_path}\n  secretKey: value\n"
    return {"roleName": "app", "objects": objects}


def mount(process: ProviderProcess, secret_path: str, pod: str = "app-0") -> MountResult:
    return process.mount(
        parameters(secret_path), namespace=NAMESPACE, service_account=SERVICE_ACCOUNT, pod_name=pod
    )


def socket_entries(directory: Path) -> dict[str, os.stat_result]:
    """Every socket-related name in `directory` (the endpoint and private bind names) with its lstat."""
    found = {}
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            if "vault.sock" in entry.name:
                with contextlib.suppress(FileNotFoundError):
                    found[entry.name] = entry.stat(follow_symlinks=False)
    return found


class SocketWatcher:
    """Samples a directory as fast as it can, recording every socket name and mode it ever sees."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.modes: dict[str, set[int]] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="socket-watcher", daemon=True)

    def __enter__(self) -> SocketWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, info in socket_entries(self.directory).items():
                self.modes.setdefault(name, set()).add(info.st_mode)
            self.samples += 1


def separate_process(
    socket_path: Path, directory: Path, issuer: ServiceAccountTokenIssuer, vault_addr: str, *args: str
) -> ProviderProcess:
    """A provider on `socket_path` whose log and key live in `directory` (not next to the socket)."""
    key_file = write_key_file(directory / "hmac.key")
    return ProviderProcess(
        socket_path=socket_path,
        log_path=directory / "provider.log",
        key_file=key_file,
        issuer=issuer,
        argv=provider_argv(socket_path, vault_addr=vault_addr, key_file=key_file, extra=args),
        env=provider_env(),
    )


def wait_for_new_socket(process: ProviderProcess, old_inode: int, timeout: float = 15.0) -> None:
    """Wait until `process` has put its own socket at the endpoint (it answers Version there)."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.proc is not None
        assert process.proc.poll() is None, process.log_text()
        with contextlib.suppress(FileNotFoundError):
            if process.socket_path.lstat().st_ino != old_inode:
                process.wait_ready()
                return
        assert time.monotonic() < deadline, f"no new socket after {timeout} s:\n{process.log_text()}"
        time.sleep(0.02)


def test_socket_is_never_reachable_by_others(start_provider: StartProvider, tmp_path: Path) -> None:
    """Started under umask 000, every socket name that ever appears is owner-only; only the endpoint stays."""
    previous = os.umask(0)
    try:
        with SocketWatcher(tmp_path) as watcher:
            process = start_provider(directory=tmp_path, wait=False)
            os.umask(previous)
            process.wait_ready()
            time.sleep(0.2)
    finally:
        os.umask(previous)

    assert watcher.samples > 100, "the watcher barely ran"
    assert "vault.sock" in watcher.modes
    for name, modes in watcher.modes.items():
        for mode in modes:
            assert stat.S_ISSOCK(mode), (name, oct(mode))
            assert stat.S_IMODE(mode) & 0o077 == 0, f"{name} was {oct(stat.S_IMODE(mode))}"
    assert set(socket_entries(tmp_path)) == {"vault.sock"}
    assert process.stop() == 0
    assert socket_entries(tmp_path) == {}


def test_failed_start_leaves_no_socket_behind(start_provider: StartProvider, tmp_path: Path) -> None:
    """With the health port taken the provider exits 1, leaving neither the endpoint nor its bind name."""
    with socket.create_server(("127.0.0.1", 0)) as occupied:
        port = occupied.getsockname()[1]
        process = start_provider(f"-health-addr=127.0.0.1:{port}", directory=tmp_path, wait=False)
        code = process.wait_exit(timeout=15)

    assert code == 1
    assert f"cannot serve health on 127.0.0.1:{port}" in process.log_text()
    assert socket_entries(tmp_path) == {}


def test_symlink_at_the_endpoint_is_left_alone(start_provider: StartProvider, tmp_path: Path) -> None:
    """A symlink at the endpoint (even to a real socket) is not replaced: refuse to start, keep both."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "real.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(target))
        endpoint = tmp_path / "vault.sock"
        endpoint.symlink_to(target)

        process = start_provider(directory=tmp_path, wait=False)
        code = process.wait_exit(timeout=15)

    assert code != 0
    assert f"{endpoint} exists and is not a socket; refusing to replace it" in process.log_text()
    assert endpoint.is_symlink()
    assert os.readlink(endpoint) == str(target)
    assert stat.S_ISSOCK(target.lstat().st_mode)


def test_second_provider_takes_over_without_breaking_the_first(
    start_provider: StartProvider,
    proxy: FaultProxy,
    issuer: ServiceAccountTokenIssuer,
    secret_path: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """During an update: the old provider finishes its slow Mount, new Mounts reach the new one,
    and the old one's exit leaves the new one's socket in place."""
    shared = tmp_path_factory.mktemp("hostpath")
    first = start_provider(vault_addr=proxy.url, directory=shared)
    second = separate_process(first.socket_path, tmp_path_factory.mktemp("second"), issuer, proxy.url)
    proxy.inject(LOGIN, Slow(2.0))
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            in_flight = pool.submit(mount, first, secret_path, "in-flight")
            while proxy.count(LOGIN) == 0:
                time.sleep(0.02)
            second.start()
            wait_for_new_socket(second, first.socket_path.lstat().st_ino)
            assert not in_flight.done(), "the slow Mount should still be running"
            result = in_flight.result(timeout=20)
        assert result.files[0].contents == b"socket-value"
        assert "pod=team-a/in-flight" in first.log_text()

        # A new connection (gRPC would otherwise reuse this process's connection to the first provider).
        attributes, secrets = second.payload(
            parameters(secret_path), namespace=NAMESPACE, service_account=SERVICE_ACCOUNT, pod_name="after"
        )
        request = service_pb2.MountRequest(
            attributes=attributes, secrets=secrets, target_path="/t", permission="420"
        )
        options = [("grpc.use_local_subchannel_pool", 1)]
        with grpc.insecure_channel(f"unix://{first.socket_path}", options=options) as channel:
            stub = service_pb2_grpc.CSIDriverProviderStub(channel)  # type: ignore[no-untyped-call]
            assert stub.Mount(request, timeout=20).files[0].contents == b"socket-value"
        assert "pod=team-a/after" in second.log_text()
        assert "pod=team-a/after" not in first.log_text()

        assert first.stop() == 0
        assert "another provider owns it now" in first.log_text()
        assert stat.S_ISSOCK(second.socket_path.lstat().st_mode)
        assert second.version()[0] == "v1alpha1"
        assert set(socket_entries(shared)) == {"vault.sock"}
    finally:
        if second.proc is not None and second.proc.poll() is None:
            assert second.stop() == 0, second.log_text()
    assert socket_entries(shared) == {}


def test_sigterm_with_a_hung_mount_exits_within_the_grace(
    start_provider: StartProvider, proxy: FaultProxy, secret_path: str, tmp_path: Path
) -> None:
    """A Mount hanging on Vault does not hold the pod: SIGTERM exits 0 about -shutdown-grace later."""
    process = start_provider("-shutdown-grace=1s", vault_addr=proxy.url, directory=tmp_path)
    proxy.inject(LOGIN, Hang())
    attributes, secrets = process.payload(
        parameters(secret_path), namespace=NAMESPACE, service_account=SERVICE_ACCOUNT, pod_name="hung"
    )
    request = service_pb2.MountRequest(
        attributes=attributes, secrets=secrets, target_path="/t", permission="420"
    )
    # A plain channel: the driver's client would wait for a new socket after the old one is gone.
    with grpc.insecure_channel(f"unix://{process.socket_path}") as channel:
        stub = service_pb2_grpc.CSIDriverProviderStub(channel)  # type: ignore[no-untyped-call]
        in_flight = stub.Mount.future(request, timeout=6)
        while proxy.count(LOGIN) == 0:
            time.sleep(0.02)
        started = time.monotonic()
        process.terminate()
        code = process.wait_exit(timeout=5)
        elapsed = time.monotonic() - started
        with pytest.raises(grpc.RpcError) as caught:
            in_flight.result(timeout=5)

    assert code == 0, process.log_text()
    assert 1.0 <= elapsed < 1.0 + 2.0
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert socket_entries(tmp_path) == {}
