"""Test-side plumbing for the integration suite: the provider as a real process, and the driver.

`ProviderProcess` runs `python -m provider` with real flags and a real environment,
waits for its unix socket and stops it with SIGTERM. `mount` on it plays the Secrets
Store CSI driver: it builds `attributes` exactly as the driver does (with a freshly
minted service-account token) and calls Mount over the socket with the driver's client.
`UnixForwarder` is a tiny unix-socket → TCP relay, standing in for the Vault Agent
sidecar's `unix://` listener.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import pytest
import requests

from devkit import BackendMissing, OpenBaoServer, ServiceAccountTokenIssuer
from provider.tools.driver import MountResult, PodInfo, ProviderClient, build_mount_payload

__all__ = [
    "REPO_ROOT",
    "SERVER_NAME",
    "ProviderProcess",
    "StartProvider",
    "UnixForwarder",
    "VaultEnv",
    "pod_uid",
    "unique",
    "write_key_file",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_NAME = "vault.test.internal"
SPC_NAME = "app-secrets"
_READY_TIMEOUT_SECONDS = 15.0
_STOP_TIMEOUT_SECONDS = 25.0
_POLL_SECONDS = 0.02


def backend_unavailable(exc: BackendMissing) -> NoReturn:
    """Skip a test whose backend this machine lacks, saying how to get it; on CI, fail instead."""
    # On CI a missing backend is a broken image, not a reason to skip.
    if os.environ.get("CI") == "true":
        pytest.fail(str(exc))
    pytest.skip(str(exc))


def unique(prefix: str) -> str:
    """A name no other test uses, so tests sharing one OpenBao never see each other's secrets."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def pod_uid(namespace: str, pod_name: str) -> str:
    """A stable pod UID for a namespace and pod name."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"pod/{namespace}/{pod_name}"))


def write_key_file(path: Path) -> Path:
    """Write 32 random bytes, owner-readable only, as an `-hmac-key-file`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_bytes(32))
    return path


@dataclass
class VaultEnv:
    """The configured OpenBao: its root client, and one scoped to the Vault namespace `tenant`."""

    bao: OpenBaoServer
    root: Any
    tenant: Any

    @property
    def address(self) -> str:
        return self.bao.address

    @property
    def tls_address(self) -> str:
        assert self.bao.tls_address is not None
        return self.bao.tls_address

    @property
    def ca_pem_path(self) -> Path:
        assert self.bao.ca_pem_path is not None
        return self.bao.ca_pem_path

    def put_kv2(self, path: str, data: Mapping[str, Any], *, mount: str = "secret") -> None:
        self.root.secrets.kv.v2.create_or_update_secret(path=path, secret=dict(data), mount_point=mount)

    def put_raw(self, api_path: str, body_json: str) -> None:
        """POST raw JSON text to `/v1/<api_path>`, so numbers reach Vault exactly as written."""
        response = requests.post(
            f"{self.address}/v1/{api_path}",
            data=body_json.encode(),
            headers={"X-Vault-Token": self.bao.root_token, "Content-Type": "application/json"},
            timeout=10,
        )
        assert response.status_code in (200, 204), response.text

    def put_kv1(self, path: str, data: Mapping[str, Any], *, mount: str = "kv1") -> None:
        self.root.secrets.kv.v1.create_or_update_secret(path=path, secret=dict(data), mount_point=mount)


@dataclass(repr=False)
class ProviderProcess:
    """One `python -m provider` process and a driver-side client for its socket."""

    socket_path: Path
    log_path: Path
    key_file: Path | None
    issuer: ServiceAccountTokenIssuer
    argv: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    #: Every service-account token this helper put into a request, to look for in the log.
    tokens: list[str] = field(default_factory=list)
    #: The contents of every file a Mount returned: secret values, not to be found in the log.
    contents: list[bytes] = field(default_factory=list)
    _client: ProviderClient | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __repr__(self) -> str:
        # Short, and never the tokens it holds: this shows up in pytest's failure reports.
        return f"ProviderProcess({self.socket_path})"

    def start(self) -> None:
        """Launch the process; stderr (the log) and stdout go to `log_path`."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=self.env,
                cwd=REPO_ROOT,
            )

    def wait_ready(self, timeout: float = _READY_TIMEOUT_SECONDS) -> None:
        """Wait until the endpoint is a socket that answers Version; fail with the log if not."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"provider exited with {self.proc.returncode}:\n{self.log_text()}")
            if self._is_socket():
                with contextlib.suppress(Exception):
                    self.version()
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"provider not ready after {timeout:.0f} s:\n{self.log_text()}")
            time.sleep(_POLL_SECONDS)

    def wait_exit(self, timeout: float = _STOP_TIMEOUT_SECONDS) -> int:
        """The exit code; if the process outlives `timeout`, a failure carrying its log (how far it got)."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"provider running after {timeout:.0f} s:\n{self.log_text()}") from None

    def terminate(self) -> None:
        """Send SIGTERM (the kubelet's way of stopping the pod)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    def stop(self) -> int:
        """SIGTERM, wait, and return the exit code; kills the process if it does not exit."""
        self.close_client()
        assert self.proc is not None
        if self.proc.poll() is None:
            self.terminate()
        try:
            return self.proc.wait(timeout=_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def kill(self) -> None:
        self.close_client()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    @property
    def client(self) -> ProviderClient:
        with self._lock:
            if self._client is None:
                self._client = ProviderClient(self.socket_path, timeout_seconds=30)
            return self._client

    def close_client(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def version(self) -> tuple[str, str, str]:
        return self.client.version()

    def payload(
        self,
        spc_parameters: Mapping[str, str],
        *,
        namespace: str,
        service_account: str,
        pod_name: str = "app-0",
        audience: str | None = "vault",
        token: str | None = None,
        spc_name: str = SPC_NAME,
    ) -> tuple[str, str]:
        """The (attributes, secrets) strings the driver sends for this pod and SecretProviderClass.

        `audience` is the CSIDriver's tokenRequests audience the kubelet mints a token for
        (None: no tokenRequests, so no token at all); `token` replaces the minted token.
        """
        uid = pod_uid(namespace, pod_name)
        tokens = None
        if audience is not None:
            if token is None:
                token = self.issuer.mint(namespace, service_account, pod_name, uid, audiences=[audience])
            self.tokens.append(token)
            expires = (datetime.now(UTC) + timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
            tokens = {audience: (token, expires)}
        pod = PodInfo(namespace=namespace, name=pod_name, uid=uid, service_account=service_account)
        return build_mount_payload(spc_parameters, spc_name=spc_name, pod=pod, tokens=tokens)

    def mount(
        self,
        spc_parameters: Mapping[str, str],
        *,
        namespace: str,
        service_account: str,
        pod_name: str = "app-0",
        audience: str | None = "vault",
        token: str | None = None,
        target_dir: Path | None = None,
        spc_name: str = SPC_NAME,
    ) -> MountResult:
        """Mount as the driver would for a pod (see `payload`); raises the driver client's ProviderCallError.

        With `target_dir` the files are written with the driver's atomic writer.
        """
        attributes, secrets_json = self.payload(
            spc_parameters,
            namespace=namespace,
            service_account=service_account,
            pod_name=pod_name,
            audience=audience,
            token=token,
            spc_name=spc_name,
        )
        if target_dir is not None:
            result = self.client.mount_into(target_dir, attributes, secrets_json)
        else:
            # The kubelet's tmpfs for the volume; the provider must never write there itself.
            uid = pod_uid(namespace, pod_name)
            target_path = f"/var/lib/kubelet/pods/{uid}/volumes/kubernetes.io~csi/secrets-store/mount"
            result = self.client.mount(attributes, secrets_json, target_path)
        self.contents.extend(file.contents for file in result.files)
        return result

    def _is_socket(self) -> bool:
        try:
            return stat.S_ISSOCK(self.socket_path.lstat().st_mode)
        except FileNotFoundError:
            return False


#: The `start_provider` fixture: `start_provider(*args, vault_addr=, key_file=, env=, wait=, directory=)`.
StartProvider = Callable[..., ProviderProcess]


def provider_argv(
    socket_path: Path, *, vault_addr: str | None, key_file: Path | None, extra: Sequence[str] = ()
) -> list[str]:
    """The command line of a provider process, as the DaemonSet would pass it."""
    # Many providers run at once here: each takes an ephemeral health port (flags given later win).
    argv = [
        sys.executable,
        "-m",
        "provider",
        f"-endpoint={socket_path}",
        "-log-level=debug",
        "-health-addr=127.0.0.1:0",
    ]
    if vault_addr is not None:
        argv.append(f"-vault-addr={vault_addr}")
    if key_file is not None:
        argv.append(f"-hmac-key-file={key_file}")
    return [*argv, *extra]


def provider_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without VAULT_*/BAO_* variables, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("VAULT_", "BAO_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    env.update(extra or {})
    return env


class SocketRelay:
    """Accepts connections on `listener` and relays each to a TCP address, byte for byte; counts them."""

    def __init__(self, listener: socket.socket, target: tuple[str, int], name: str) -> None:
        self.target = target
        self.connections = 0
        self._listener = listener
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name=name, daemon=True)

    def start(self) -> None:
        self._listener.listen(64)
        # accept() wakes up regularly to notice stop(); closing alone does not wake it.
        self._listener.settimeout(0.05)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        self._listener.close()
        with self._lock:
            for conn in self._open:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            upstream = socket.create_connection(self.target)
            with self._lock:
                self.connections += 1
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


class UnixForwarder(SocketRelay):
    """A unix socket relayed to a TCP address (stands in for the Agent sidecar's socket)."""

    def __init__(self, socket_path: Path, target: tuple[str, int]) -> None:
        self.socket_path = socket_path
        super().__init__(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM), target, "unix-forwarder")

    def __enter__(self) -> UnixForwarder:
        self._listener.bind(str(self.socket_path))
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.socket_path.unlink(missing_ok=True)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
