"""Our gRPC server (provider/serve/rpc_*) asked by grpcio's own client over a unix socket.

grpcio is the reference here: if its client reads our answers as meant (status codes,
messages, deadlines, cancellation, large answers through HTTP/2 flow control, the drain),
so does the driver's grpc-go client, which the e2e suite checks through the real binary.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2

from provider.serve import messages
from provider.serve.health_probe import check_health
from provider.serve.health_service import HealthService
from provider.serve.rpc_connection import Limits
from provider.serve.rpc_server import Method, RpcServer
from provider.serve.rpc_status import CallContext, StatusCode
from provider.v1alpha1 import service_pb2

ECHO = "/test.Echo/Echo"
Handler = Callable[[Any, CallContext], Any]


def reply(text: str) -> Any:
    return messages.VersionResponse(runtime_version=text)


class Served:
    """A server with one Echo method whose handler each test sets, and a grpcio channel to it."""

    def __init__(self, directory: Path, max_receive: int = 64 * 1024) -> None:
        self.handler: Handler = lambda request, context: reply(request.version)
        self.health = HealthService()
        self.socket = str(directory / "rpc.sock")
        methods = {
            ECHO: Method(
                messages.VersionRequest.decode,
                lambda r, c: self.handler(r, c),
                messages.VersionResponse.encode,
            ),
            "/grpc.health.v1.Health/Check": Method(
                messages.HealthCheckRequest.decode, self.health.Check, messages.HealthCheckResponse.encode
            ),
        }
        self.server = RpcServer(methods, workers=4, limits=Limits(max_receive, 8 * 1024 * 1024))
        self.server.listen(self.socket)
        self.server.start()
        self.channel = grpc.insecure_channel(f"unix://{self.socket}")

    def call(self, text: str = "", timeout: float = 5.0, method: str = ECHO, **options: Any) -> Any:
        return self._stub(method)(service_pb2.VersionRequest(version=text), timeout=timeout, **options)

    def future(self, text: str = "", timeout: float = 5.0) -> Any:
        return self._stub(ECHO).future(service_pb2.VersionRequest(version=text), timeout=timeout)

    def _stub(self, method: str) -> Any:
        return self.channel.unary_unary(
            method,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=service_pb2.VersionResponse.FromString,
        )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    serving = Served(tmp_path)
    yield serving
    serving.channel.close()
    serving.server.stop(0)


def failure(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code(), caught.value.details()


def test_a_unary_call_round_trips(served: Served) -> None:
    """The request reaches the handler and its answer the caller, many times over one connection."""
    assert [served.call(f"n{i}").runtime_version for i in range(20)] == [f"n{i}" for i in range(20)]


@pytest.mark.parametrize(
    "details",
    [
        pytest.param("secret not found at secret/data/app", id="ascii"),
        pytest.param("100% of objects: ünïcode, a\nnewline", id="percent-unicode-newline"),
    ],
)
def test_an_abort_reaches_the_caller_with_its_code_and_message(served: Served, details: str) -> None:
    """grpc-status and the percent-encoded grpc-message arrive as the handler set them."""

    def handler(request: Any, context: CallContext) -> Any:
        context.abort(StatusCode.NOT_FOUND, details)

    served.handler = handler
    assert failure(served.call) == (grpc.StatusCode.NOT_FOUND, details)


def test_an_unknown_method_is_unimplemented(served: Served) -> None:
    assert failure(lambda: served.call(method="/test.Echo/Nope")) == (
        grpc.StatusCode.UNIMPLEMENTED,
        "unknown method /test.Echo/Nope",
    )


def test_a_bug_in_a_handler_is_unknown_and_its_text_stays_out_of_the_log(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """The caller learns where to look; the log has where it happened, not the exception's text."""

    def handler(request: Any, context: CallContext) -> Any:
        raise RuntimeError(request.version)  # the traceback quotes this line, never the value

    served.handler = handler
    with caplog.at_level(logging.ERROR, logger="provider.rpc"):
        assert failure(lambda: served.call("hunter2")) == (
            grpc.StatusCode.UNKNOWN,
            "unexpected error in the provider; see its log",
        )
    assert "unexpected RuntimeError in /test.Echo/Echo" in caplog.text
    assert "hunter2" not in caplog.text
    served.handler = lambda request, context: reply(request.version)
    assert served.call("still serving").runtime_version == "still serving"


def test_the_callers_deadline_reaches_the_handler(served: Served) -> None:
    seen: list[float | None] = []

    def handler(request: Any, context: CallContext) -> Any:
        seen.append(context.time_remaining())
        return reply("")

    served.handler = handler
    served.call(timeout=3.0)
    assert seen[0] is not None
    assert 2.0 < seen[0] <= 3.1  # grpc-timeout is rounded up to its unit


def test_a_cancelled_call_runs_the_handlers_callbacks(served: Served) -> None:
    """The driver giving up (RST_STREAM) reaches the Mount as its deadline's cancel."""
    entered, cancelled = threading.Event(), threading.Event()

    def handler(request: Any, context: CallContext) -> Any:
        context.add_callback(cancelled.set)
        entered.set()
        cancelled.wait(5)
        return reply("late")

    served.handler = handler
    pending = served.future()
    assert entered.wait(5)
    pending.cancel()
    assert cancelled.wait(5)
    served.handler = lambda request, context: reply(request.version)
    assert served.call("after").runtime_version == "after"


def test_calls_arriving_while_the_reader_answers_one_itself_are_answered_meanwhile(served: Served) -> None:
    """A call alone on its connection runs on the reader thread; the relief thread reads the next ones."""
    entered, release = threading.Event(), threading.Event()
    threads: dict[str, str] = {}

    def handler(request: Any, context: CallContext) -> Any:
        threads[request.version] = threading.current_thread().name
        if request.version == "slow":
            entered.set()
            assert release.wait(5)
        return reply(request.version)

    served.handler = handler
    served.call("warm")  # the connection is open: the next call is alone on it
    slow = served.future("slow")
    assert entered.wait(5)
    assert [served.call(f"quick-{i}", timeout=3).runtime_version for i in range(3)] == [
        "quick-0",
        "quick-1",
        "quick-2",
    ]
    assert not slow.done()
    release.set()
    assert slow.result(timeout=5).runtime_version == "slow"
    assert threads["slow"] == "rpc-conn"
    assert {threads[f"quick-{i}"] for i in range(3)} <= {f"rpc_{n}" for n in range(1, 5)}


def test_a_large_answer_flows_through_http2_flow_control(served: Served) -> None:
    """3 MiB, far past the 64 KiB initial window: sent as the client opens its window."""
    big = "x" * (3 * 1024 * 1024)
    served.handler = lambda request, context: reply(big)
    assert served.call().runtime_version == big


def test_a_request_over_the_limit_is_refused(served: Served) -> None:
    assert failure(lambda: served.call("y" * (100 * 1024))) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "the request is larger than allowed",
    )
    assert served.call("small").runtime_version == "small"


def test_a_compressed_request_is_unimplemented(served: Served) -> None:
    assert failure(lambda: served.call("z" * 100, compression=grpc.Compression.Gzip)) == (
        grpc.StatusCode.UNIMPLEMENTED,
        "compressed messages are not supported; send them uncompressed",
    )


def test_stop_lets_a_call_in_flight_finish_and_refuses_new_connections(served: Served) -> None:
    entered, release = threading.Event(), threading.Event()

    def handler(request: Any, context: CallContext) -> Any:
        entered.set()
        release.wait(5)
        return reply("finished")

    served.handler = handler
    pending = served.future()
    assert entered.wait(5)
    stopping = threading.Thread(target=served.server.stop, args=(5.0,))
    stopping.start()
    release.set()
    assert pending.result(timeout=5).runtime_version == "finished"
    stopping.join(5)
    assert not stopping.is_alive()
    fresh = grpc.insecure_channel(f"unix://{served.socket}")
    stub = fresh.unary_unary(ECHO, request_serializer=lambda m: m.SerializeToString())
    with pytest.raises(grpc.RpcError) as caught:
        stub(service_pb2.VersionRequest(), timeout=2)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    fresh.close()


def test_the_health_probe_reads_our_health_service(served: Served, tmp_path: Path) -> None:
    """SERVING, NOT_SERVING once the drain begins, and no server at all, as /health/ready says them."""
    served.health.set("", health_pb2.HealthCheckResponse.SERVING)
    assert check_health(served.socket, 2.0) is None
    served.health.enter_graceful_shutdown()
    assert check_health(served.socket, 2.0) == "gRPC server is NOT_SERVING"
    assert check_health(str(tmp_path / "absent.sock"), 2.0) == "gRPC server not answering: UNAVAILABLE"


def test_the_health_probe_names_an_unknown_service_as_not_found(served: Served) -> None:
    """No status set for the whole server: the server's NOT_FOUND is what the probe reports."""
    assert check_health(served.socket, 2.0) == "gRPC server not answering: NOT_FOUND"


def test_bytes_that_are_not_http2_end_that_connection_with_goaway_and_nothing_else(served: Served) -> None:
    with socket.socket(socket.AF_UNIX) as peer:
        peer.settimeout(5)
        peer.connect(served.socket)
        peer.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while chunk := peer.recv(65536):
            received += chunk
    goaway = received[-17:]  # the last frame: 9 bytes of frame header, last stream, error code
    assert (goaway[3], struct.unpack(">LL", goaway[9:])) == (7, (0, 1))  # GOAWAY, PROTOCOL_ERROR
    assert served.call("still serving").runtime_version == "still serving"


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        pytest.param(b"HTTP/1.1 400 Bad Request\r\n\r\n", "UNAVAILABLE", id="not-http2"),
        pytest.param(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00", "UNAVAILABLE", id="settings-then-close"),
        pytest.param(b"\x00\x00\x08\x07\x00\x00\x00\x00\x00" + bytes(8), "UNAVAILABLE", id="goaway"),
        pytest.param(None, "DEADLINE_EXCEEDED", id="silent"),
    ],
)
def test_the_health_probe_reports_a_socket_that_is_no_grpc_server(
    tmp_path: Path, answer: bytes | None, said: str
) -> None:
    path = str(tmp_path / "other.sock")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(path)
        listener.listen(1)

        def serve_once() -> None:
            peer, _ = listener.accept()
            with peer:
                peer.recv(65536)
                if answer is None:
                    peer.recv(65536)  # until the probe gives up and closes
                else:
                    peer.sendall(answer)

        threading.Thread(target=serve_once, daemon=True).start()
        assert check_health(path, 0.3) == f"gRPC server not answering: {said}"
