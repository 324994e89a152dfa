"""The HTTP/1.1 transport against a scripted socket server in the test: framing, reuse, limits, faults.

Each scripted step reads one request off a connection and then answers it as told:
bytes at once or trickled, then the connection kept, closed, or reset. The server
records the heads it read and how many connections it accepted, so a test can tell a
reused connection from a new one and a retried request from a single one.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provider.errors import DeadlineExceeded, ProviderError, ResponseTooLarge, VaultRejected, VaultUnavailable
from provider.vault.http11 import request_head
from provider.vault.target import VaultTarget
from provider.vault.transport import HttpRequest, HttpResponse, Transport, begin, http11_transports

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
GET = HttpRequest("GET", "/v1/secret/data/app")


@dataclass(frozen=True)
class Step:
    """After reading a request: send `answer`, then `trickle` a byte per `drip` seconds, then `then`."""

    answer: bytes = OK
    then: str = "keep"  # keep | close | reset | hang
    trickle: bytes = b""
    drip: float = 0.0


class ScriptedServer:
    def __init__(self, family: int = socket.AF_INET, path: str = "") -> None:
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.bind(path or ("127.0.0.1", 0))
        self._listener.listen(16)
        self.steps: queue.Queue[Step] = queue.Queue()
        self.heads: list[bytes] = []
        self.connections = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def script(self, *steps: Step) -> None:
        for step in steps:
            self.steps.put(step)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                buffer = buffer[length:]
                self.heads.append(head)
                step = self.steps.get(timeout=5)
                if not self._answer(conn, step):
                    return

    def _answer(self, conn: socket.socket, step: Step) -> bool:
        conn.sendall(step.answer)
        with contextlib.suppress(OSError):
            for index in range(len(step.trickle)):
                if self._stop.wait(step.drip):
                    return False
                conn.sendall(step.trickle[index : index + 1])
        if step.then == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if step.then == "hang":
            self._stop.wait(10)
        return step.then == "keep"


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    scripted = ScriptedServer()
    yield scripted
    scripted.close()


def transport_to(
    server: ScriptedServer, max_body_bytes: int = 1024, path: str = ""
) -> tuple[Transport, VaultTarget]:
    target = VaultTarget(f"http://127.0.0.1:{server.port}{path}", "flag")
    return http11_transports(pool_size=2, max_body_bytes=max_body_bytes)(target), target


def send(server: ScriptedServer, *requests: HttpRequest, timeout: float = 2.0) -> list[HttpResponse]:
    transport, _ = transport_to(server)
    try:
        return [transport.send(request, timeout) for request in requests]
    finally:
        transport.close()


@pytest.mark.parametrize(
    ("answer", "body", "reused"),
    [
        pytest.param(OK, b"{}", True, id="content-length"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3;ext=1\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: t\r\n\r\n",
            b"abc0123456789abcdef",
            True,
            id="chunked",
        ),
        pytest.param(b"HTTP/1.1 200 OK\r\n\r\nuntil the end", b"until the end", False, id="close-delimited"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
            b"ok",
            False,
            id="connection-close",
        ),
        pytest.param(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", b"ok", False, id="http-1.0"),
        pytest.param(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
            b"ok",
            True,
            id="1.0-keep-alive",
        ),
        pytest.param(b"HTTP/1.1 204 No Content\r\n\r\n", b"", True, id="204-no-body"),
        pytest.param(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", b"", True, id="304-no-body"),
        pytest.param(b"HTTP/1.1 100 Continue\r\n\r\n" + OK, b"{}", True, id="interim-100"),
    ],
)
def test_body_framing_and_reuse(server: ScriptedServer, answer: bytes, body: bytes, reused: bool) -> None:
    """Each framing gives the whole body; the connection is reused only when the body was delimited."""
    then = "keep" if reused else "close"
    server.script(Step(answer, then), Step(OK))
    first, second = send(server, GET, GET)
    assert (first.status >= 200, first.body, second.body) == (True, body, b"{}")
    assert server.connections == (1 if reused else 2)


def test_head_has_no_body_and_headers_are_any_case(server: ScriptedServer) -> None:
    server.script(
        Step(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\n"),
        Step(),
    )
    head, get = send(server, HttpRequest("HEAD", "/v1/sys/health"), GET)
    assert (head.body, head.headers["Content-Type"], head.headers.get("X-A")) == (b"", "text/plain", "1, 2")
    assert get.body == b"{}"
    assert server.connections == 1


def test_request_head_on_the_wire(server: ScriptedServer) -> None:
    """Host with the port, the address's path prefix, Content-Length for a body, no compression asked."""
    server.script(Step(), Step())
    transport, _ = transport_to(server, path="/prefix/")
    try:
        transport.send(
            HttpRequest("POST", "/v1/auth/login", (("a", "b c"),), {"X-Vault-Request": "true"}, b"{}"), 2
        )
        transport.send(HttpRequest("PUT", "/v1/sys/x y"), 2)
    finally:
        transport.close()
    post, put = (head.decode().split("\r\n") for head in server.heads)
    assert post[0] == "POST /prefix/v1/auth/login?a=b+c HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}" in post
    assert {"X-Vault-Request: true", "Content-Length: 2"} <= set(post)
    assert not any(line.lower().startswith("accept-encoding") for line in post)
    assert put[0] == "PUT /prefix/v1/sys/x%20y HTTP/1.1"
    assert "Content-Length: 0" in put


@pytest.mark.parametrize(
    ("steps", "kind", "message", "requests", "connections"),
    [
        pytest.param(
            [Step(b"", "close")],
            VaultUnavailable,
            "cannot reach Vault at {where}: the connection closed before an answer",
            1,
            1,
            id="fresh-connection-closed-unanswered",
        ),
        pytest.param(
            [Step(b"", "reset")],
            VaultUnavailable,
            "cannot reach Vault at {where}: Connection reset by peer",
            1,
            1,
            id="reset-unanswered",
        ),
        pytest.param(
            [Step(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "close")],
            VaultUnavailable,
            "Vault at {where} cut its answer off before the end",
            1,
            1,
            id="truncated-body",
        ),
        pytest.param(
            [Step(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "close")],
            VaultUnavailable,
            "Vault at {where} cut its answer off before the end",
            1,
            1,
            id="truncated-chunk",
        ),
        pytest.param(
            [Step(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "close")],
            VaultUnavailable,
            "Vault at {where} cut its answer off before the end",
            1,
            1,
            id="malformed-chunk-size",
        ),
        pytest.param(
            [Step(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "close")],
            VaultUnavailable,
            "Vault at {where} cut its answer off before the end",
            1,
            1,
            id="not-http",
        ),
        pytest.param(
            [Step(b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n", "close")],
            ResponseTooLarge,
            "Vault's answer to GET /v1/secret/data/app is larger than 1024 bytes",
            1,
            1,
            id="oversized-content-length",
        ),
        pytest.param(
            [
                Step(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n"
                    + b"x" * 2048
                    + b"\r\n0\r\n\r\n"
                )
            ],
            ResponseTooLarge,
            "Vault's answer to GET /v1/secret/data/app is larger than 1024 bytes",
            1,
            1,
            id="oversized-chunked",
        ),
        pytest.param(
            [Step(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 2048, "close")],
            ResponseTooLarge,
            "Vault's answer to GET /v1/secret/data/app is larger than 1024 bytes",
            1,
            1,
            id="oversized-close-delimited",
        ),
        pytest.param(
            [Step(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", trickle=b"x" * 100, drip=0.05)],
            DeadlineExceeded,
            "Vault at {where} was still sending its answer at the Mount's deadline",
            1,
            1,
            id="slow-body-past-deadline",
        ),
        pytest.param(
            [Step(b"", "hang")],
            DeadlineExceeded,
            "Vault at {where} did not answer within the Mount's deadline",
            1,
            1,
            id="no-answer",
        ),
    ],
)
def test_failures(
    server: ScriptedServer,
    steps: list[Step],
    kind: type[ProviderError],
    message: str,
    requests: int,
    connections: int,
) -> None:
    """Each fault is one request, one connection, and our error with its message; none is resent."""
    server.script(*steps)
    transport, target = transport_to(server)
    started = time.monotonic()
    try:
        with pytest.raises(ProviderError) as caught:
            transport.send(GET, 0.5)
    finally:
        transport.close()
    assert (type(caught.value), str(caught.value)) == (kind, message.format(where=target.describe()))
    assert (len(server.heads), server.connections) == (requests, connections)
    assert time.monotonic() - started < 0.5 + 0.2


def test_stale_keep_alive_is_sent_again_on_a_new_connection(server: ScriptedServer) -> None:
    """The server closes a kept connection as the next request arrives, before answering: sent again, once."""
    server.script(Step(), Step(b"", "close"), Step())
    first, second = send(server, GET, GET)
    assert (first.status, second.status, second.body) == (200, 200, b"{}")
    assert (len(server.heads), server.connections) == (3, 2)


def test_a_connection_closed_while_idle_is_not_used(server: ScriptedServer) -> None:
    """Closed (FIN) after its answer and seen closed before the next request: that request goes out once."""
    server.script(Step(OK, "close"), Step())
    transport, _ = transport_to(server)
    try:
        transport.send(GET, 2)
        time.sleep(0.05)
        assert transport.send(GET, 2).body == b"{}"
    finally:
        transport.close()
    assert (len(server.heads), server.connections) == (2, 2)


def test_a_reset_on_a_kept_connection_is_not_resent(server: ScriptedServer) -> None:
    """A reset after the server read the request may follow a request it acted on: the caller decides."""
    server.script(Step(), Step(b"", "reset"))
    transport, target = transport_to(server)
    try:
        transport.send(GET, 2)
        with pytest.raises(VaultUnavailable) as caught:
            transport.send(HttpRequest("POST", "/v1/auth/kubernetes/login", body=b"{}"), 2)
    finally:
        transport.close()
    assert str(caught.value) == f"cannot reach Vault at {target.describe()}: Connection reset by peer"
    assert caught.value.retryable
    assert (len(server.heads), server.connections) == (2, 1)


def test_unix_socket_sends_host_localhost(tmp_path: Path) -> None:
    path = str(tmp_path / "vault.sock")
    server = ScriptedServer(socket.AF_UNIX, path)
    server.script(Step())
    transport = http11_transports(pool_size=1)(VaultTarget(f"unix://{path}", "flag"))
    try:
        assert transport.send(GET, 2).body == b"{}"
    finally:
        transport.close()
        server.close()
    assert "Host: localhost" in server.heads[0].decode().split("\r\n")


def test_a_missing_unix_socket_cannot_be_reached(tmp_path: Path) -> None:
    target = VaultTarget(f"unix://{tmp_path}/none.sock", "flag")
    with pytest.raises(VaultUnavailable) as caught:
        http11_transports(pool_size=1)(target).send(GET, 1)
    assert str(caught.value) == f"cannot reach Vault at {target.describe()}: No such file or directory"
    assert caught.value.retryable


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        pytest.param(
            {"X-Vault-Namespace": "a\r\nX-Evil: 1"},
            "the 'X-Vault-Namespace' header holds a line break",
            id="crlf",
        ),
        pytest.param({"X-Vault-Token": "tok\x00"}, "the 'X-Vault-Token' header holds a line break", id="nul"),
        pytest.param(
            {"X-Vault-Namespace": "ns-\u263a"}, "a header holds a character outside Latin-1", id="not-latin-1"
        ),
    ],
)
def test_unsafe_header_values_are_refused_without_quoting_them(headers: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match="header") as caught:
        request_head("GET", "/v1/x", "vault", headers, None)
    assert str(caught.value).startswith(message)
    assert not any(value[:3] in str(caught.value) for value in headers.values())


def test_an_unsafe_header_is_vault_rejected(server: ScriptedServer) -> None:
    transport, target = transport_to(server)
    with pytest.raises(VaultRejected) as caught:
        transport.send(HttpRequest("GET", "/v1/x", headers={"X-Vault-Token": "s.abc\r\n"}), 1)
    assert str(caught.value) == (
        f"cannot send GET /v1/x to Vault at {target.describe()}: "
        "the 'X-Vault-Token' header holds a line break or control character"
    )
    assert server.heads == []


def test_requests_begun_together_are_on_the_wire_before_any_answer_is_read(server: ScriptedServer) -> None:
    """`begin` writes at once, on a connection each: Vault works on all of a Mount's reads together."""
    server.script(Step(), Step(OK.replace(b"{}", b"[]")))
    transport, _ = transport_to(server)
    try:
        first = begin(transport, GET, 2)
        second = begin(transport, HttpRequest("GET", "/v1/secret/data/other"), 2)
        ends = time.monotonic() + 2
        while len(server.heads) < 2 and time.monotonic() < ends:
            time.sleep(0.005)
        assert len(server.heads) == 2, "both requests reach the server before either answer is read"
        bodies = sorted([first.answer().body, second.answer().body])
    finally:
        transport.close()
    assert (bodies, server.connections) == ([b"[]", b"{}"], 2)


def test_a_begun_request_that_cannot_connect_fails_when_its_answer_is_read() -> None:
    """The failure waits for `answer()`, so a Mount meets each request's error in object order."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    target = VaultTarget(f"http://127.0.0.1:{port}", "flag")
    transport = http11_transports(pool_size=2)(target)
    try:
        pending = begin(transport, GET, 2)
        with pytest.raises(VaultUnavailable) as caught:
            pending.answer()
    finally:
        transport.close()
    assert str(caught.value) == f"cannot reach Vault at {target.describe()}: Connection refused"
    assert caught.value.retryable
