"""A small threaded JSON-over-HTTP(S) server with a route table, for standing in for real APIs.

Routes map (method, path regex) to a handler taking a `StubRequest` and returning a
`StubResponse`. Every request is counted per path so tests can assert how often a backend
was called. Subclasses (the fake kube-apiserver) register their routes in `__init__`;
tests may add more with `add_route` before or after `start`.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devkit.certs import KeyPair, write_pem
from devkit.procs import Service

__all__ = ["Handler", "JsonHttpServer", "StubRequest", "StubResponse"]

_HOST = "127.0.0.1"
_HANDSHAKE_TIMEOUT_SECONDS = 10.0
# How quickly serve_forever notices stop(); the default 0.5 s would dominate short tests.
_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class StubRequest:
    """One parsed HTTP request as a route handler sees it; `match` holds the path regex groups."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # keys lower-cased
    body: bytes
    match: re.Match[str] | None  # None when no route matched (see `not_found`)

    def json(self) -> Any:
        """The body decoded as JSON; raises ValueError when it is not."""
        return json.loads(self.body or b"null")

    def bearer_token(self) -> str | None:
        """The token from an `Authorization: Bearer ...` header, if any."""
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()


@dataclass(frozen=True)
class StubResponse:
    """A JSON response: `body` is serialised with json.dumps."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[StubRequest], StubResponse]


class JsonHttpServer(Service):
    """A route-table HTTP server on 127.0.0.1 and a kernel-chosen port; HTTPS when given a KeyPair.

    Use as a context manager (or `start`/`stop`). Handlers run on per-connection daemon threads.
    """

    def __init__(self, tls: KeyPair | None = None) -> None:
        self.routes: dict[tuple[str, re.Pattern[str]], Handler] = {}
        self.requests: dict[str, int] = {}
        self._lock = threading.Lock()
        self._tls_context = _server_context(tls) if tls is not None else None
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def add_route(self, method: str, path_regex: str, handler: Handler) -> None:
        """Serve `method` requests whose whole path matches `path_regex` with `handler`.

        Routes added later take precedence, so a test can override a built-in route.
        """
        self.routes[(method.upper(), re.compile(path_regex))] = handler

    def not_found(self, request: StubRequest) -> StubResponse:
        """The answer when no route matches; subclasses speak their API's error format."""
        return StubResponse(404, {"error": f"no route for {request.method} {request.path}"})

    @property
    def url(self) -> str:
        """Base URL, e.g. `https://127.0.0.1:40123` (no trailing slash)."""
        if self._httpd is None:
            raise RuntimeError("server is not started")
        scheme = "https" if self._tls_context is not None else "http"
        return f"{scheme}://{_HOST}:{self._httpd.server_address[1]}"

    def request_count(self, path: str) -> int:
        """How many requests (any method, any outcome) arrived for `path`."""
        with self._lock:
            return self.requests.get(path, 0)

    def start(self) -> None:
        """Bind and start serving on a background daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("server is already started")
        httpd = _Server(self, self._tls_context)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(_POLL_SECONDS,), name="devkit-http-stub", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close every open connection; safe to call twice."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def dispatch(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> StubResponse:
        """Count the request and answer it from the route table; called on the connection's thread."""
        parts = urlsplit(target)
        with self._lock:
            self.requests[parts.path] = self.requests.get(parts.path, 0) + 1
        for (route_method, pattern), handler in reversed(list(self.routes.items())):
            match = pattern.fullmatch(parts.path)
            if match is not None and route_method == method:
                request = StubRequest(method, parts.path, parse_qs(parts.query), headers, body, match)
                return handler(request)
        return self.not_found(StubRequest(method, parts.path, parse_qs(parts.query), headers, body, None))


def _server_context(pair: KeyPair) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # load_cert_chain only takes paths; the files are needed just for this call.
    with tempfile.TemporaryDirectory(prefix="devkit-tls-") as scratch:
        cert = write_pem(Path(scratch) / "tls.crt", pair.cert_pem)
        key = write_pem(Path(scratch) / "tls.key", pair.key_pem)
        context.load_cert_chain(cert, key)
    return context


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Clients such as Go's HTTP transport keep idle connections open for 90 s; stop()
    # closes them itself instead of waiting for their threads.
    block_on_close = False

    def __init__(self, stub: JsonHttpServer, tls_context: ssl.SSLContext | None) -> None:
        self.stub = stub
        self.tls_context = tls_context
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__((_HOST, 0), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake happens here, on the connection's own thread, so a slow or
        # broken client cannot stall the accept loop.
        conn: socket.socket = request
        if self.tls_context is not None:
            request.settimeout(_HANDSHAKE_TIMEOUT_SECONDS)
            try:
                conn = self.tls_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                request.close()
                return
            conn.settimeout(None)
        with self._open_lock:
            self._open.add(conn)
        try:
            super().finish_request(conn, client_address)
        finally:
            with self._open_lock:
                self._open.discard(conn)
            if conn is not request:
                _close_quietly(conn)

    def close_connections(self) -> None:
        with self._open_lock:
            for conn in self._open:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


def _close_quietly(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_WR)
    conn.close()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Without TCP_NODELAY every HTTPS round trip waits ~40 ms on delayed ACKs.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        # Silent: test output stays readable and request details never reach a log.
        return

    def _handle(self) -> None:
        try:
            body = self._read_body()
        except ValueError:
            self._send(StubResponse(400, {"error": "unreadable request body"}))
            return
        headers = {key.lower(): value for key, value in self.headers.items()}
        try:
            response = self.server.stub.dispatch(self.command, self.path, headers, body)
        except Exception as exc:  # a broken handler must answer, not hang the client
            response = StubResponse(500, {"error": f"handler failed: {type(exc).__name__}"})
        self._send(response)

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    # Trailer section: header lines up to an empty line.
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _send(self, response: StubResponse) -> None:
        payload = json.dumps(response.body).encode("utf-8")
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
