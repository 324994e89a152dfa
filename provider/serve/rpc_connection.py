"""One client's HTTP/2 connection to our gRPC server: requests in, unary answers out.

A reader thread owns the socket's receiving side and the HTTP/2 state (`http2`). A call
whose request is complete while no other call is open on the connection (a rotation
poll, as the driver spaces them) is answered by the reader itself, with `relief`
reading whatever else arrives meanwhile; otherwise it goes to a worker, which writes
its own answer under the same lock. grpcio's Python server takes three hand-offs per
call (completion queue, polling thread, worker) and keeps 22 MiB of its core in every
node's memory. The driver keeps one connection open and multiplexes its Mounts over it.

Bad bytes end the connection, never the process: a protocol error is answered with
GOAWAY, and anything else from the peer closes the socket quietly.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading

from provider.serve import grpc_wire
from provider.serve.http2 import ServerProtocol
from provider.serve.http2_frames import Data, Event, Headers, ProtocolError, Reset
from provider.serve.logs import where_raised
from provider.serve.relief import Relief
from provider.serve.rpc_calls import Call, CallRunner, Limits, Method
from provider.serve.rpc_status import CallContext, RpcAbort, StatusCode

__all__ = ["CallRunner", "Connection", "Limits", "Method"]

log = logging.getLogger("provider.rpc")

_RECEIVE_BYTES = 256 * 1024
_WINDOW_BYTES = 1024 * 1024
_MAX_STREAMS = 256


class Connection:
    """Serves one accepted socket until the peer leaves or `close`."""

    def __init__(
        self,
        sock: socket.socket,
        methods: dict[str, Method],
        limits: Limits,
        runner: CallRunner,
        relief: Relief,
    ) -> None:
        self._sock = sock
        self._methods = methods
        self._limits = limits
        self._runner = runner
        self._relief = relief
        self._answering_here = False  # the reader is answering a call itself
        # Of a request's headers only :method, :path, content-type and grpc-timeout are
        # read, each checked where it is used; ours are constants.
        self._http2 = ServerProtocol(_MAX_STREAMS, _WINDOW_BYTES)
        # Guards the HTTP/2 state and writes to the socket; waited on for flow-control windows.
        self._lock = threading.Condition()
        self._calls: dict[int, Call] = {}
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
            # Read into one buffer: a fresh 256 KiB bytes object per read was an mmap, an mremap
            # and a munmap per call.
            buffer = memoryview(bytearray(_RECEIVE_BYTES))
            while received := self._sock.recv_into(buffer):
                calls = self._receive(buffer[:received])
                if len(calls) == 1 and self._alone(calls[0]):
                    self._answer_here(calls[0])
                else:
                    self._to_workers(calls)
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

    def _alone(self, call: Call) -> bool:
        with self._lock:
            return not self._draining and len(self._calls) == 1 and call.stream_id in self._calls

    def _answer_here(self, call: Call) -> None:
        """Answer `call` on the reader thread; meanwhile `relief` reads for it (`_relieve`)."""
        fd = self._sock.fileno()
        with self._lock:
            self._answering_here = True
        self._relief.watch(fd, self._relieve)
        try:
            self._runner.run_here(lambda: self._run(call, here=True))
        finally:
            self._relief.unwatch(fd)
            with self._lock:
                self._answering_here = False

    def _relieve(self) -> bool:
        """On the relief thread, while the reader answers: read what arrived; True to be woken again."""
        with self._lock:
            if not self._answering_here or self._gone:
                return False
            try:
                data = self._sock.recv(_RECEIVE_BYTES, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return True
            except OSError:
                return False  # the reader meets the same error after its call
            if not data:
                return False  # the peer left: likewise
            try:
                calls = self._receive(data)
            except ProtocolError:
                self.close()  # GOAWAY is sent; the reader's next read ends the connection
                return False
        self._to_workers(calls)
        return True

    def _to_workers(self, calls: list[Call]) -> None:
        for call in calls:
            self._runner.submit(lambda call=call: self._run(call))  # type: ignore[misc]

    def _receive(self, data: bytes | memoryview) -> list[Call]:
        ready: list[Call] = []
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

    def _on_event(self, event: Event) -> Call | None:
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

    def _begin(self, stream_id: int, headers: dict[bytes, bytes]) -> Call:
        path = headers.get(b":path", b"").decode("latin-1")
        call = Call(stream_id, path, CallContext(grpc_wire.parse_timeout(headers.get(b"grpc-timeout"))))
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

    def _refuse(self, call: Call, code: StatusCode, details: str) -> None:
        """Answer now, with no message (lock held)."""
        call.refused = True
        self._finish(call, None, code, details)

    def _run(self, call: Call, here: bool = False) -> None:
        """The handler's answer, or the status it ended with; `here`: on the reader (`_answer_here`)."""
        method = self._methods[call.path]
        try:
            try:
                request = method.decode(grpc_wire.unframe(bytes(call.body)))
            except grpc_wire.WireError as exc:
                raise RpcAbort(exc.code, str(exc)) from None
            except Exception:
                raise RpcAbort(StatusCode.INTERNAL, "cannot parse the request message") from None
            payload = grpc_wire.frame(method.encode(method.handle(request, call.context)))
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
                if here and (
                    outcome[0] is None or len(outcome[0]) <= self._http2.send_window(call.stream_id)
                ):
                    # The answer needs nothing more from the peer (no WINDOW_UPDATE): what comes now,
                    # such as the PING a client sends on receiving it, waits for the reader itself.
                    self._relief.unwatch(self._sock.fileno())
                self._finish(call, *outcome)
        finally:
            call.context.end()

    def _finish(self, call: Call, payload: bytes | None, code: StatusCode, details: str) -> None:
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

    def _send_data(self, call: Call, payload: bytes) -> None:
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
        self._relief.forget(self._sock.fileno())
        self._sock.close()
