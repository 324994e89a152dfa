"""HTTP plumbing for Vault: TLS exactly as configured, and unix:// addresses.

requests would otherwise mix in certifi's bundle next to a configured CA, ignore a
CA directory that is not c_rehash'ed, and has no unix-socket transport (the Helm
chart's Agent sidecar listens on unix:///var/run/vault/agent.sock). Two small
adapters fix that; everything else about sessions stays ordinary requests.
"""

from __future__ import annotations

import os
import socket
import ssl
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool

from provider.settings import TlsSettings

__all__ = ["TlsAdapter", "UnixSocketAdapter", "build_ssl_context"]

PEM_SUFFIXES = (".pem", ".crt", ".cer")


def build_ssl_context(tls: TlsSettings) -> ssl.SSLContext:
    """An SSL context trusting exactly the configured CAs (else the system's).

    Raises OSError/ssl.SSLError for unreadable files; the caller turns those into
    messages that name the file.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if tls.skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif tls.ca_cert or tls.ca_directory:
        # create_default_context loaded the system roots; a configured CA replaces them.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if tls.ca_cert:
            context.load_verify_locations(cafile=tls.ca_cert)
        if tls.ca_directory:
            # Like Go's client: every PEM file in the directory, no hashed names needed.
            loaded = 0
            for entry in sorted(Path(tls.ca_directory).iterdir()):
                if entry.is_file() and entry.suffix.lower() in PEM_SUFFIXES:
                    context.load_verify_locations(cafile=str(entry))
                    loaded += 1
            if not loaded:
                raise ssl.SSLError(f"no PEM certificates in {tls.ca_directory}")
    if tls.client_cert:
        context.load_cert_chain(certfile=tls.client_cert, keyfile=tls.client_key or None)
    return context


class TlsAdapter(HTTPAdapter):
    """HTTPS with our own SSLContext and server name; requests' verify/cert are ignored."""

    def __init__(self, context: ssl.SSLContext, server_name: str, pool_size: int) -> None:
        self._context = context
        self._server_name = server_name
        super().__init__(pool_connections=1, pool_maxsize=pool_size, max_retries=0)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        pool_kwargs["ssl_context"] = self._context
        if self._server_name:
            pool_kwargs["server_hostname"] = self._server_name
            pool_kwargs["assert_hostname"] = self._server_name
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        proxy_kwargs["ssl_context"] = self._context
        return super().proxy_manager_for(proxy, **proxy_kwargs)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> Any:
        # Only the host; TLS settings come from the pool manager (our SSLContext).
        host_params, _ = super().build_connection_pool_key_attributes(request, verify, cert)
        return host_params, {}

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        """Verification is fully decided by our SSLContext."""


class _UnixConnection(HTTPConnection):
    def __init__(self, *args: Any, socket_path: str, **kwargs: Any) -> None:
        self._socket_path = socket_path
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if isinstance(self.timeout, (int, float)):
            sock.settimeout(self.timeout)
        try:
            sock.connect(self._socket_path)
        except OSError:
            sock.close()
            raise
        return sock


class _UnixPool(HTTPConnectionPool):
    def __init__(self, socket_path: str, maxsize: int) -> None:
        super().__init__("localhost", maxsize=maxsize)
        self._socket_path = socket_path

    def _new_conn(self) -> HTTPConnection:
        self.num_connections += 1
        return _UnixConnection(
            host=self.host,
            port=self.port,
            timeout=self.timeout.connect_timeout,
            socket_path=self._socket_path,
        )


class UnixSocketAdapter(HTTPAdapter):
    """Sends every request of the session over one unix socket (Host: localhost)."""

    def __init__(self, socket_path: str, pool_size: int) -> None:
        super().__init__(max_retries=0)
        self._pool = _UnixPool(os.fspath(socket_path), pool_size)

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: bool | str | None,
        proxies: Any = None,
        cert: Any = None,
    ) -> HTTPConnectionPool:
        return self._pool

    def request_url(self, request: requests.PreparedRequest, proxies: Any) -> str:
        return request.path_url

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        """No TLS on a unix socket."""

    def close(self) -> None:
        self._pool.close()
        super().close()
