"""A transparent HTTP/1.1 proxy between the provider and OpenBao that times every request.

The provider is pointed at the proxy's address as if it were Vault. Each client
connection gets a handler thread and its own keep-alive connection to OpenBao, so the
provider's connection reuse is preserved. For every request the proxy records when it
arrived (the request line was read) and when the whole response had been handed back
(`perf_counter`, the harness's clock): the Vault wait of a Mount is the union of these
intervals inside it. The proxy's own forwarding cost therefore counts as Vault time,
never as the provider's overhead.

With `delay` (seconds, `--network-rtt-ms`) each request waits that long before it is
forwarded: a network round trip between the provider and Vault, paid by every request
once, and once for requests in flight together. It sleeps, so it costs no CPU.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

__all__ = ["ProxyRecord", "TimingProxy"]

_HOST = "127.0.0.1"
# Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the proxy sets itself.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
        "content-length",
    }
)
_UPSTREAM_TIMEOUT_SECONDS = 120.0
# Idle keep-alive connections from the provider are dropped after this long.
_IDLE_SECONDS = 300.0
_MAX_RECORDS = 500_000
_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class ProxyRecord:
    """One proxied request: perf_counter times, method, path without query, HTTP status (0: no answer)."""

    start: float
    end: float
    method: str
    path: str
    status: int


class TimingProxy:
    """Forwards to `upstream` (an http:// URL); a context manager, or `start`/`stop`."""

    def __init__(self, upstream: str, delay: float = 0.0) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"the timing proxy forwards to http://host:port only, got {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port
        self.delay = delay
        self._records: deque[ProxyRecord] = deque(maxlen=_MAX_RECORDS)
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: _ProxyServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        return f"http://{_HOST}:{self._server.server_address[1]}"

    def start(self) -> None:
        server = _ProxyServer(self)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(_POLL_SECONDS,), name="bench-proxy", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> TimingProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def drain(self) -> list[ProxyRecord]:
        """Every record since the last drain, oldest first; the buffer is emptied."""
        with self._lock:
            records = list(self._records)
            self._records.clear()
        return records

    # --- called from handler threads --------------------------------------------------------

    def record(self, item: ProxyRecord) -> None:
        with self._lock:
            self._records.append(item)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # A mount storm opens many connections at once.
    request_queue_size = 256

    def __init__(self, proxy: TimingProxy) -> None:
        self.proxy = proxy
        super().__init__((_HOST, 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like Vault's own listener
    disable_nagle_algorithm = True
    timeout = _IDLE_SECONDS
    server: _ProxyServer

    _upstream: http.client.HTTPConnection | None = None
    _started = 0.0

    def setup(self) -> None:
        super().setup()
        self.server.proxy.track(self.connection, True)

    def finish(self) -> None:
        self.server.proxy.track(self.connection, False)
        if self._upstream is not None:
            self._upstream.close()
        with contextlib.suppress(OSError):
            super().finish()

    def parse_request(self) -> bool:
        # The request line has just been read: this is when the request reached "Vault".
        self._started = time.perf_counter()
        return super().parse_request()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the benchmark's output is its report."""

    def _forward(self) -> None:
        body = self._read_body()
        if self.server.proxy.delay:
            time.sleep(self.server.proxy.delay)
        headers = {name: value for name, value in self.headers.items() if name.lower() not in _HOP_BY_HOP}
        if body or self.command in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        try:
            status, reason, response_headers, payload = self._exchange(headers, body)
        except (OSError, http.client.HTTPException) as exc:
            status, reason = 502, "Bad Gateway"
            payload = ('{"errors":["bench proxy: upstream failed: ' + type(exc).__name__ + '"]}').encode()
            response_headers = [("Content-Type", "application/json")]
            self.close_connection = True
        head = [f"HTTP/1.1 {status} {reason}"]
        head += [f"{name}: {value}" for name, value in response_headers if name.lower() not in _HOP_BY_HOP]
        if self.command != "HEAD":
            head.append(f"Content-Length: {len(payload)}")
        if self.close_connection:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (
            b"" if self.command == "HEAD" else payload
        )
        try:
            self.wfile.write(data)
            self.wfile.flush()
        finally:
            path = self.path.split("?", 1)[0]
            self.server.proxy.record(
                ProxyRecord(self._started, time.perf_counter(), self.command, path, status)
            )

    def _exchange(
        self, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        # A keep-alive connection OpenBao closed while idle fails on first use: retry once, fresh.
        for attempt in (1, 2):
            reused = self._upstream is not None
            connection = self._connection()
            try:
                connection.request(self.command, self.path, body=body or None, headers=headers)
                response = connection.getresponse()
                payload = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                connection.close()
                self._upstream = None
                if reused and attempt == 1:
                    continue
                raise
            if response.will_close:
                connection.close()
                self._upstream = None
            return response.status, response.reason, response.getheaders(), payload
        raise AssertionError("unreachable")

    def _connection(self) -> http.client.HTTPConnection:
        if self._upstream is None:
            proxy = self.server.proxy
            connection = http.client.HTTPConnection(
                proxy.upstream_host, proxy.upstream_port, timeout=_UPSTREAM_TIMEOUT_SECONDS
            )
            connection.connect()
            assert connection.sock is not None
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._upstream = connection
        return self._upstream

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                # Trailers, if any, end with an empty line.
                while self.rfile.readline().strip():
                    pass
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_LIST = do_OPTIONS = _forward
