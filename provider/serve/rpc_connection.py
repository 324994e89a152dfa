"""One client's HTTP/2 connection to our gRPC server: requests in, unary answers out.

A reader thread owns the socket's receiving side and the HTTP/2 state (`http2`); a call whose
request is complete goes to a worker, which writes its own answer under the same lock.
That is one thread hand-off per call, where grpcio's Python server takes three
(completion queue, polling thread, worker) and keeps 22 MiB of its core in every node's
memory. The driver keeps one connection open and multiplexes its Mounts over it.

Bad bytes end the connection, never the process: a protocol error is answered with
GOAWAY, and anything else from the peer closes the socket quietly.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from provider.serve import grpc_wire
from provider.serve.http2 import ServerProtocol
from provider.serve.http2_frames import Data, Event, Headers, ProtocolError, Reset
from provider.serve.logs import where_raised
from provider.serve.rpc_status import CallContext, RpcAbort, StatusCode

__all__ = ["Connection", "Limits", "Method"]

log = logging.getLogger("provider.rpc")

_RECEIVE_BYTES = 256 * 1024
_WINDOW_BYTES = 1024 * 1024
_MAX_STREAMS = 256


class Method(NamedTuple):
    """A unary method: how its request is parsed, and the handler that answers it."""

    decode: Callable[[bytes], Any]
    handle: Callable[[Any, CallContext], Any]


@dataclass(frozen=True)
class Limits:
    max_receive_bytes: int
    max_send_bytes: int


@dataclass
class _Call:
    stream_id: int
    path: str
    context: CallContext
    body: bytearray = field(default_factory=bytearray)
    refused: bool = False  # answered already (too large, unknown), body ignored
    closed: bool = False  # reset by the client, or the connection is gone


class Connection:
    """Serves one accepted socket until the peer leaves or `close`."""

    def __init__(
        self,
        sock: socket.socket,
        methods: dict[str, Method],
        limits: Limits,
        dispatch: Callable[[Callable[[], None]], None],
    ) -> None:
        self._sock = sock
        self._methods = methods
        self._limits = limits
        self._dispatch = dispatch
        # Of a request's headers only :method, :path, content-type and grpc-timeout are
        # read, each checked where it is used; ours are constants.
        self._http2 = ServerProtocol(_MAX_STREAMS, _WINDOW_BYTES)
        # Guards the HTTP/2 state and writes to the socket; waited on for flow-control windows.
        self._lock = threading.Condition()
        self._calls: dict[int, _Call] = {}
        self._draining = False
        self._gone = False

    def serve(self) -> None:
        """The reader loop; returns when the connection is over."""
        try:
            with self._lock:
                # Streams keep HTTP/2's 64 KiB window (grpc-core did not honour a larger
                # INITIAL_WINDOW_SIZE); the connection's is wider so many Mounts' requests can
                # arrive at once.
                self._http2.start()
                self._flush()
            while data := self._sock.recv(_RECEIVE_BYTES):
                for call in self._receive(data):
                    self._dispatch(lambda call=call: self._run(call))  # type: ignore[misc]
        except (OSError, ProtocolError):
            pass  # the peer went away or spoke something that is not HTTP/2: it is its loss
        except Exception as exc:
            log.error("unexpected %s on a gRPC connection\n%s", type(exc).__name__, where_raised(exc))
        finally:
            self._end()

    def drain(self) -> None:
        """Say GOAWAY: no new calls here; the ones begun are still answered."""
        with self._lock:
            if self._draining or self._gone:
                return
            self._draining = True
            # The answers still due are written after it: GOAWAY only stops new streams.
            self._send(self._http2.goaway())

    def close(self) -> None:
        """Cut the connection; the reader ends and cancels whatever is still running."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def _receive(self, data: bytes) -> list[_Call]:
        ready: list[_Call] = []
        with self._lock:
            try:
                events = self._http2.receive(data)
            except ProtocolError as exc:
                self._flush()
                self._send(self._http2.goaway(exc.code))
                raise
            for event in events:
                call = self._on_event(event)
                if call is not None:
                    ready.append(call)
            self._flush()
        return ready

    def _on_event(self, event: Event) -> _Call | None:
        if isinstance(event, Headers):
            begun = self._begin(event.stream_id, event.fields)
            return begun if event.ended and not begun.refused else None
        if isinstance(event, Data):
            call = self._calls.get(event.stream_id)
            if call is None or call.refused:
                return None
            call.body += event.data
            if len(call.body) > self._limits.max_receive_bytes:
                self._refuse(call, StatusCode.RESOURCE_EXHAUSTED, "the request is larger than allowed")
                return None
            return call if event.ended else None
        if isinstance(event, Reset):
            reset = self._calls.pop(event.stream_id, None)
            if reset is not None:
                reset.closed = True
                reset.context.end()
            return None
        self._lock.notify_all()  # WindowOpened: a worker may be waiting to send
        return None

    def _begin(self, stream_id: int, headers: dict[bytes, bytes]) -> _Call:
        path = headers.get(b":path", b"").decode("latin-1")
        call = _Call(stream_id, path, CallContext(grpc_wire.parse_timeout(headers.get(b"grpc-timeout"))))
        self._calls[stream_id] = call
        if self._draining:
            self._refuse(call, StatusCode.UNAVAILABLE, "the provider is shutting down")
        elif headers.get(b":method") != b"POST" or not headers.get(b"content-type", b"").startswith(
            grpc_wire.CONTENT_TYPE
        ):
            self._refuse(call, StatusCode.UNIMPLEMENTED, "only gRPC calls are served here")
        elif path not in self._methods:
            self._refuse(call, StatusCode.UNIMPLEMENTED, f"unknown method {path}")
        return call

    def _refuse(self, call: _Call, code: StatusCode, details: str) -> None:
        """Answer now, with no message (lock held)."""
        call.refused = True
        self._finish(call, None, code, details)

    def _run(self, call: _Call) -> None:
        """On a worker: the handler's answer, or the status it ended with."""
        method = self._methods[call.path]
        try:
            try:
                request = method.decode(grpc_wire.unframe(bytes(call.body)))
            except grpc_wire.WireError as exc:
                raise RpcAbort(exc.code, str(exc)) from None
            except Exception:
                raise RpcAbort(StatusCode.INTERNAL, "cannot parse the request message") from None
            payload = grpc_wire.frame(method.handle(request, call.context).SerializeToString())
            if len(payload) > self._limits.max_send_bytes:
                raise RpcAbort(StatusCode.RESOURCE_EXHAUSTED, "the answer is larger than allowed")
            outcome: tuple[bytes | None, StatusCode, str] = (payload, StatusCode.OK, "")
        except RpcAbort as abort:
            outcome = (None, abort.code, abort.details)
        except Exception as exc:
            log.error("unexpected %s in %s\n%s", type(exc).__name__, call.path, where_raised(exc))
            outcome = (None, StatusCode.UNKNOWN, "unexpected error in the provider; see its log")
        try:
            with self._lock:
                self._finish(call, *outcome)
        finally:
            call.context.end()

    def _finish(self, call: _Call, payload: bytes | None, code: StatusCode, details: str) -> None:
        """Write the answer (lock held); a call its client reset or left is dropped."""
        if call.closed or self._gone:
            return
        start = [(b":status", b"200"), (b"content-type", grpc_wire.CONTENT_TYPE)]
        try:
            if payload is None:
                self._http2.send_headers(
                    call.stream_id, start + grpc_wire.trailers(code, details), end_stream=True
                )
            else:
                self._http2.send_headers(call.stream_id, start, end_stream=False)
                self._send_data(call, payload)
                if call.closed or self._gone:
                    return
                self._http2.send_headers(call.stream_id, grpc_wire.trailers(code, details), end_stream=True)
            self._flush()
        finally:
            self._calls.pop(call.stream_id, None)

    def _send_data(self, call: _Call, payload: bytes) -> None:
        view = memoryview(payload)
        while view and not (call.closed or self._gone):
            window = min(self._http2.send_window(call.stream_id), self._http2.max_outbound_frame_size)
            if window <= 0:
                self._flush()
                self._lock.wait(timeout=1.0)  # the reader notifies on WINDOW_UPDATE
                continue
            self._http2.send_data(call.stream_id, bytes(view[:window]))
            view = view[window:]
        # Not flushed here: the caller writes headers, data and trailers in one send.

    def _flush(self) -> None:
        data = self._http2.data_to_send()
        if data:
            self._send(data)

    def _send(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError:
            self._gone = True

    def _end(self) -> None:
        with self._lock:
            self._gone = True
            calls, self._calls = list(self._calls.values()), {}
            self._lock.notify_all()
        for call in calls:
            call.closed = True
            call.context.end()
        self._sock.close()
