"""A urllib3 pool over a unix socket: Vault at unix:///path.sock (the Helm chart's Agent sidecar)."""

from __future__ import annotations

import socket
from typing import Any

from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool

__all__ = ["UnixSocketPool"]


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


class UnixSocketPool(HTTPConnectionPool):
    """HTTP/1.1 to `localhost` over the socket at `socket_path`."""

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
