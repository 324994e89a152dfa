"""A fault-injecting HTTP proxy in front of a real OpenBao, and a TCP relay that counts connections.

`FaultProxy` forwards every request to OpenBao unless a scripted fault matches it first.
Faults are queued per (method, path pattern) and each is used for exactly one request, in
order; once a queue is empty, matching requests are forwarded again. Every request is
recorded with the time it arrived and what was done with it, so tests assert call counts
and the gaps between retries.

    with FaultProxy(vault.address) as proxy:
        proxy.inject(LOGIN, Status(500), Status(500))     # two failures, then OpenBao answers
        ...
        assert proxy.count(LOGIN) == 3

`TcpRelay` relays bytes (TLS included, untouched) to a TCP address and counts connections:
the way to see how often the provider tried a TLS handshake.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from harness import SocketRelay

__all__ = [
    "LOGIN",
    "Drip",
    "Fault",
    "FaultProxy",
    "Hang",
    "Raw",
    "Reset",
    "Seen",
    "Slow",
    "Status",
    "TcpRelay",
    "Truncate",
]

#: The Kubernetes auth login of every Mount in these tests.
LOGIN = r"/v1/auth/kubernetes/login"
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "te", "upgrade"}
_UPSTREAM_TIMEOUT_SECONDS = 30.0
# A fault never holds a connection longer than this, even if the test forgets to stop it.
_MAX_HOLD_SECONDS = 60.0


@dataclass(frozen=True)
class Fault:
    """Base class: what to do with one request instead of (or on top of) forwarding it."""

    def describe(self) -> str:
        return type(self).__name__.lower()


@dataclass(frozen=True)
class Status(Fault):
    """Answer `status` with Vault's error shape (`{"errors": [...]}`) and `headers`; nothing is forwarded."""

    status: int
    errors: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return str(self.status)


@dataclass(frozen=True)
class Raw(Fault):
    """Answer exactly these bytes with this status and content type; nothing is forwarded."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return f"raw {self.status}"


@dataclass(frozen=True)
class Reset(Fault):
    """Read the request, then reset the connection (TCP RST) without answering."""


@dataclass(frozen=True)
class Hang(Fault):
    """Read the request and answer nothing until `seconds` pass or the proxy stops; then close."""

    seconds: float = _MAX_HOLD_SECONDS


@dataclass(frozen=True)
class Slow(Fault):
    """Wait `seconds`, then forward the request and answer normally."""

    seconds: float


@dataclass(frozen=True)
class Truncate(Fault):
    """Forward, then announce `missing` more bytes in Content-Length than are sent, and close."""

    missing: int = 100


@dataclass(frozen=True)
class Drip(Fault):
    """Forward, then send the answer's body one byte every `interval` seconds (headers at once)."""

    interval: float


@dataclass(frozen=True)
class Seen:
    """One request the proxy received: when (monotonic seconds), and what it did with it."""

    method: str
    path: str
    at: float
    outcome: str  # "forwarded" or the fault's description


class FaultProxy:
    """A threaded HTTP/1.1 proxy on 127.0.0.1 and a kernel-chosen port; a context manager."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"the upstream must be http://host:port, not {upstream!r}")
        self.upstream = (parts.hostname, parts.port)
        self.seen: list[Seen] = []
        self._faults: list[tuple[str | None, re.Pattern[str], list[Fault]]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.proxy = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._serve, name="fault-proxy", daemon=True)

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _serve(self) -> None:
        self._server.serve_forever(poll_interval=0.05)

    def inject(self, path: str, *faults: Fault, method: str | None = None) -> None:
        """Queue `faults` for the next requests whose path fully matches the regex `path` (and `method`)."""
        with self._lock:
            self._faults.append((method, re.compile(path), list(faults)))

    def release(self) -> None:
        """Let every held connection (Hang) go now."""
        self._stopping.set()

    def reset(self) -> None:
        """Forget scripted faults and recorded requests; release held connections."""
        self.release()
        with self._lock:
            self._faults.clear()
            self.seen.clear()
        self._stopping = threading.Event()

    def count(self, path: str, method: str | None = None) -> int:
        """How many requests fully matching `path` (and `method`) arrived so far."""
        return len(self.requests(path, method))

    def requests(self, path: str, method: str | None = None) -> list[Seen]:
        pattern = re.compile(path)
        with self._lock:
            return [
                seen
                for seen in self.seen
                if pattern.fullmatch(seen.path) and (method is None or seen.method == method)
            ]

    def pending(self) -> int:
        """Faults scripted but not used yet."""
        with self._lock:
            return sum(len(queue) for _, _, queue in self._faults)

    def _next(self, method: str, path: str) -> tuple[Fault | None, threading.Event]:
        """The fault for this request (None: forward), recorded as seen."""
        bare = path.split("?", 1)[0]
        with self._lock:
            fault = None
            for want, pattern, queue in self._faults:
                if queue and pattern.fullmatch(bare) and (want is None or want == method):
                    fault = queue.pop(0)
                    break
            outcome = fault.describe() if fault else "forwarded"
            self.seen.append(Seen(method, bare, time.monotonic(), outcome))
            return fault, self._stopping

    def forward(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> _Upstream:
        """Send the request to OpenBao; its status, headers and whole body."""
        connection = http.client.HTTPConnection(*self.upstream, timeout=_UPSTREAM_TIMEOUT_SECONDS)
        try:
            forwarded = {key: value for key, value in headers.items() if key.lower() not in _HOP_BY_HOP}
            connection.request(method, path, body=body or None, headers=forwarded)
            response = connection.getresponse()
            data = response.read()
            kept = [(key, value) for key, value in response.getheaders() if key.lower() not in _HOP_BY_HOP]
            return _Upstream(response.status, response.reason, kept, data)
        finally:
            connection.close()


@dataclass(frozen=True)
class _Upstream:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads `FaultProxy.seen` instead."""

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_LIST = do_GET

    def _serve(self) -> None:
        proxy: FaultProxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fault, stopping = proxy._next(self.command, self.path)
        headers = {key: value for key, value in self.headers.items()}

        if fault is None:
            self._relay(proxy.forward(self.command, self.path, headers, body))
        elif isinstance(fault, Status):
            errors = json.dumps({"errors": list(fault.errors)}).encode()
            self._answer(fault.status, errors, "application/json", fault.headers)
        elif isinstance(fault, Raw):
            self._answer(fault.status, fault.body, fault.content_type, fault.headers)
        elif isinstance(fault, Reset):
            self._reset()
        elif isinstance(fault, Hang):
            stopping.wait(min(fault.seconds, _MAX_HOLD_SECONDS))
            self.close_connection = True
        elif isinstance(fault, Slow):
            if stopping.wait(fault.seconds):
                self.close_connection = True
                return
            self._relay(proxy.forward(self.command, self.path, headers, body))
        elif isinstance(fault, Truncate):
            answer = proxy.forward(self.command, self.path, headers, body)
            self._head(answer.status, answer.headers, len(answer.body) + fault.missing)
            self.wfile.write(answer.body)
            self.close_connection = True
        elif isinstance(fault, Drip):
            answer = proxy.forward(self.command, self.path, headers, body)
            self._head(answer.status, answer.headers, len(answer.body))
            with contextlib.suppress(OSError):
                for index in range(len(answer.body)):
                    if stopping.wait(fault.interval):
                        break
                    self.wfile.write(answer.body[index : index + 1])
            self.close_connection = True
        else:  # pragma: no cover - a new Fault without a branch here
            raise AssertionError(f"unhandled fault {fault!r}")

    def _relay(self, answer: _Upstream) -> None:
        self._head(answer.status, answer.headers, len(answer.body))
        self.wfile.write(answer.body)

    def _answer(self, status: int, body: bytes, content_type: str, headers: Mapping[str, str]) -> None:
        extra = [("Content-Type", content_type)] if body else []
        self._head(status, [*extra, *headers.items()], len(body))
        self.wfile.write(body)

    def _head(self, status: int, headers: list[tuple[str, str]], length: int) -> None:
        self.send_response_only(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout turns close() into a TCP RST.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True


class TcpRelay(SocketRelay):
    """Relays each TCP connection on 127.0.0.1:<port> to `target`, byte for byte; counts connections."""

    def __init__(self, target: tuple[str, int]) -> None:
        super().__init__(socket.create_server(("127.0.0.1", 0)), target, "tcp-relay")

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def __enter__(self) -> TcpRelay:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
