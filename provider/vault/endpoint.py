"""Where one Vault node listens and how to open a connection to it: TCP, TLS over TCP, or a unix socket.

Made once per transport from its target (or, for the Kubernetes client, from a URL):
https with our SSLContext (`tls`) and the configured server name for SNI and the
certificate check, http, or unix:///path.sock for the Helm chart's Agent sidecar
(HTTP to `localhost` over the socket). Opening is
bounded by the connect timeout, the TLS handshake included; failures keep their cause
(`transport_errors` reads it) behind two exceptions that say "while connecting".
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from provider.vault.http11 import Connection
from provider.vault.target import VaultTarget
from provider.vault.tls import build_ssl_context

__all__ = ["ConnectFailed", "ConnectTimeout", "Endpoint"]


class ConnectFailed(Exception):
    """No connection: the cause (refused, no such file, unknown host, TLS) is `__cause__`."""


class ConnectTimeout(TimeoutError):
    """No connection (TCP and any TLS handshake) within the connect timeout."""


@dataclass(frozen=True)
class Endpoint:
    host: str  # a name or an IP address (no brackets); unused for a unix socket
    port: int
    unix_path: str  # set for unix://
    host_header: str
    context: ssl.SSLContext | None  # None: plain HTTP
    server_hostname: str  # what SNI and the certificate check use

    @classmethod
    def of(cls, target: VaultTarget) -> Endpoint:
        """The endpoint of a one-node target; raises OSError/ssl.SSLError for unusable TLS files."""
        if target.scheme == "https":
            return cls.for_url(target.address, build_ssl_context(target.tls), target.tls.server_name)
        return cls.for_url(target.address, None)

    @classmethod
    def for_url(cls, url: str, context: ssl.SSLContext | None, server_name: str = "") -> Endpoint:
        """The endpoint of an http://, https:// (with `context`) or unix:// URL."""
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return cls("", 0, parts.path, "localhost", None, "")
        host = parts.hostname or ""
        default = 443 if parts.scheme == "https" else 80
        port = parts.port or default
        shown = f"[{host}]" if ":" in host else _ascii_host(host)
        host_header = shown if port == default else f"{shown}:{port}"
        if parts.scheme != "https":
            return cls(host, port, "", host_header, None, "")
        return cls(host, port, "", host_header, context, server_name or host)

    def open(self, timeout: float) -> Connection:
        """A new connection within `timeout` seconds; ConnectTimeout, ConnectFailed or ssl.SSLError."""
        try:
            sock = self._connect(timeout)
        except TimeoutError as exc:
            raise ConnectTimeout("no connection within the connect timeout") from exc
        except OSError as exc:
            raise ConnectFailed("no connection") from exc
        if self.context is None:
            return Connection(sock)
        try:
            return Connection(self.context.wrap_socket(sock, server_hostname=self.server_hostname))
        except TimeoutError as exc:
            sock.close()
            raise ConnectTimeout("no TLS handshake within the connect timeout") from exc
        except ssl.SSLError:
            sock.close()
            raise
        except OSError as exc:
            sock.close()
            raise ConnectFailed("no TLS session") from exc

    def _connect(self, timeout: float) -> socket.socket:
        if self.unix_path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                sock.connect(self.unix_path)
            except BaseException:
                sock.close()
                raise
            return sock
        sock = socket.create_connection((self.host, self.port), timeout)
        # One write per request, but an answer should never wait on Nagle and delayed ACKs.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


def _ascii_host(host: str) -> str:
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host
