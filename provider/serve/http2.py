"""The server side of HTTP/2 (RFC 9113) as a gRPC server needs it: frames in, events out.

Why our own: h2's general state machine was over a quarter of the CPU of serving a warm
poll (yappi), for a peer that only ever opens unary calls. This is framing, flow control
and the connection's settings; header blocks are HPACK-coded by `header_coding`. What a
gRPC server never sees is refused or ignored: a PUSH_PROMISE from a client is a protocol
error, PRIORITY is ignored, so is GOAWAY (the peer closes).

`ServerProtocol` holds no socket and takes no lock: `rpc_connection` feeds it the bytes
read, acts on the events it returns and writes `data_to_send()`, under its own lock.
Anything a conforming client would not send raises ProtocolError with the HTTP/2 error
code to put in the GOAWAY; the connection then ends, never the process.
"""

from __future__ import annotations

import struct

from provider.serve.header_coding import HeaderDecoder, HeaderError, encode_block
from provider.serve.http2_frames import (
    ACK,
    COMPRESSION_ERROR,
    CONTINUATION,
    DATA,
    DEFAULT_WINDOW,
    END_HEADERS,
    END_STREAM,
    FLOW_CONTROL_ERROR,
    FRAME_SIZE_ERROR,
    GOAWAY,
    HEADERS,
    INITIAL_WINDOW_SIZE,
    MAX_CONCURRENT_STREAMS,
    MAX_FRAME_BYTES,
    MAX_FRAME_SIZE,
    MAX_HEADER_BLOCK,
    MAX_HEADER_LIST_SIZE,
    MAX_WINDOW,
    PING,
    PREFACE,
    PRIORITY_FLAG,
    PROTOCOL_ERROR,
    PUSH_PROMISE,
    REFUSED_STREAM,
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
    Data,
    Event,
    Headers,
    ProtocolError,
    Reset,
    WindowOpened,
    frame,
    take_frames,
    unpadded,
    window_update,
)

__all__ = ["ServerProtocol"]


class ServerProtocol:
    """One server connection's HTTP/2 state. Not thread-safe: the caller serialises calls."""

    def __init__(self, max_streams: int, connection_window: int) -> None:
        self._max_streams = max_streams
        self._connection_window = connection_window  # what we allow the client to send
        self._decoder = HeaderDecoder(max_list_size=MAX_HEADER_BLOCK)
        self._buffer = bytearray()
        self._preface_seen = False
        self._out: list[bytes] = []
        self._block: tuple[int, int, bytearray] | None = None  # stream, flags, header block so far
        self._inbound_open: set[int] = set()  # streams the client may still send on
        self._unacked = 0  # connection-level bytes received since our last WINDOW_UPDATE
        self._send_windows: dict[int, int] = {}  # streams not yet answered -> their send window
        self._send_window = DEFAULT_WINDOW  # the connection's
        self._initial_window = DEFAULT_WINDOW
        self.max_outbound_frame_size = MAX_FRAME_BYTES
        self.highest_inbound_stream_id = 0

    def start(self) -> None:
        """Our SETTINGS and the connection's wider receive window, queued as the first bytes out."""
        settings = ((MAX_CONCURRENT_STREAMS, self._max_streams), (MAX_HEADER_LIST_SIZE, MAX_HEADER_BLOCK))
        self._out.append(frame(SETTINGS, 0, 0, b"".join(struct.pack(">HL", *item) for item in settings)))
        if self._connection_window > DEFAULT_WINDOW:
            self._out.append(window_update(0, self._connection_window - DEFAULT_WINDOW))

    def data_to_send(self) -> bytes:
        out, self._out = b"".join(self._out), []
        return out

    # --- receiving ----------------------------------------------------------------------------

    def receive(self, data: bytes | memoryview) -> list[Event]:
        """The events in `data` (frames may span reads); raises ProtocolError."""
        buffer = self._buffer
        buffer += data
        if not self._preface_seen:
            if len(buffer) < len(PREFACE):
                if not PREFACE.startswith(bytes(buffer)):
                    raise ProtocolError(PROTOCOL_ERROR, "not the HTTP/2 client preface")
                return []
            if buffer[: len(PREFACE)] != PREFACE:
                raise ProtocolError(PROTOCOL_ERROR, "not the HTTP/2 client preface")
            del buffer[: len(PREFACE)]
            self._preface_seen = True
        events: list[Event] = []
        for kind, flags, stream_id, payload in take_frames(buffer):
            self._on_frame(kind, flags, stream_id, payload, events)
        return events

    def _on_frame(self, kind: int, flags: int, stream_id: int, payload: bytes, events: list[Event]) -> None:
        if self._block is not None and kind != CONTINUATION:
            raise ProtocolError(PROTOCOL_ERROR, "a header block was interrupted")
        if kind == DATA:
            self._on_data(flags, stream_id, payload, events)
        elif kind == HEADERS:
            self._on_headers(flags, stream_id, payload, events)
        elif kind == CONTINUATION:
            self._on_continuation(flags, stream_id, payload, events)
        elif kind == SETTINGS:
            self._on_settings(flags, stream_id, payload, events)
        elif kind == WINDOW_UPDATE:
            self._on_window_update(stream_id, payload, events)
        elif kind == PING:
            if len(payload) != 8 or stream_id:
                raise ProtocolError(FRAME_SIZE_ERROR, "a malformed PING")
            if not flags & ACK:
                self._out.append(frame(PING, ACK, 0, payload))
        elif kind == RST_STREAM:
            if len(payload) != 4 or not stream_id:
                raise ProtocolError(FRAME_SIZE_ERROR, "a malformed RST_STREAM")
            self._inbound_open.discard(stream_id)
            if self._send_windows.pop(stream_id, None) is not None:
                events.append(Reset(stream_id))
        elif kind == PUSH_PROMISE:
            raise ProtocolError(PROTOCOL_ERROR, "a client may not push")
        # PRIORITY, GOAWAY and unknown frame types: nothing to do (RFC 9113 §5.5 for the latter).

    def _on_data(self, flags: int, stream_id: int, payload: bytes, events: list[Event]) -> None:
        if not stream_id:
            raise ProtocolError(PROTOCOL_ERROR, "DATA on stream 0")
        # All of it counts against the window, padding included.
        self._unacked += len(payload)
        if self._unacked >= self._connection_window // 2:
            self._out.append(window_update(0, self._unacked))
            self._unacked = 0
        data = unpadded(flags, payload)
        if stream_id not in self._inbound_open:
            return  # a stream already reset or ended: its late data is dropped
        ended = bool(flags & END_STREAM)
        if ended:
            self._inbound_open.discard(stream_id)
        elif payload:
            # Unary requests are small: the stream's window is topped up as each frame arrives.
            self._out.append(window_update(stream_id, len(payload)))
        events.append(Data(stream_id, data, ended))

    def _on_headers(self, flags: int, stream_id: int, payload: bytes, events: list[Event]) -> None:
        if not stream_id % 2:
            raise ProtocolError(PROTOCOL_ERROR, "a client stream with an even identifier")
        block = unpadded(flags, payload)
        if flags & PRIORITY_FLAG:
            block = block[5:]
        self._block = (stream_id, flags, bytearray(block))
        if flags & END_HEADERS:
            self._end_block(events)

    def _on_continuation(self, flags: int, stream_id: int, payload: bytes, events: list[Event]) -> None:
        if self._block is None or self._block[0] != stream_id:
            raise ProtocolError(PROTOCOL_ERROR, "CONTINUATION without its HEADERS")
        self._block[2].extend(payload)
        if len(self._block[2]) > MAX_HEADER_BLOCK:
            raise ProtocolError(PROTOCOL_ERROR, "a header block over MAX_HEADER_LIST_SIZE")
        if flags & END_HEADERS:
            self._end_block(events)

    def _end_block(self, events: list[Event]) -> None:
        assert self._block is not None
        stream_id, flags, block = self._block
        self._block = None
        try:
            fields = dict(self._decoder.decode(block))
        except HeaderError as exc:
            raise ProtocolError(COMPRESSION_ERROR, f"a header block that does not decode: {exc}") from None
        ended = bool(flags & END_STREAM)
        if stream_id in self._inbound_open:
            # Trailers from the client: gRPC sends none, but they would end the request.
            if ended:
                self._inbound_open.discard(stream_id)
                events.append(Data(stream_id, b"", True))
            return
        if stream_id <= self.highest_inbound_stream_id:
            return  # on a stream already answered or reset: decoded (HPACK's state), then dropped
        self.highest_inbound_stream_id = stream_id
        if len(self._send_windows) >= self._max_streams:
            self._out.append(frame(RST_STREAM, 0, stream_id, struct.pack(">L", REFUSED_STREAM)))
            return
        self._send_windows[stream_id] = self._initial_window
        if not ended:
            self._inbound_open.add(stream_id)
        events.append(Headers(stream_id, fields, ended))

    def _on_settings(self, flags: int, stream_id: int, payload: bytes, events: list[Event]) -> None:
        if stream_id:
            raise ProtocolError(PROTOCOL_ERROR, "SETTINGS on a stream")
        if flags & ACK:
            if payload:
                raise ProtocolError(FRAME_SIZE_ERROR, "a SETTINGS acknowledgement with a payload")
            return
        if len(payload) % 6:
            raise ProtocolError(FRAME_SIZE_ERROR, "a SETTINGS payload that is not whole settings")
        for offset in range(0, len(payload), 6):
            setting, value = struct.unpack_from(">HL", payload, offset)
            # HEADER_TABLE_SIZE sizes a table our encoder never adds to (`encode_block`).
            if setting == INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise ProtocolError(FLOW_CONTROL_ERROR, "an initial window over 2^31-1")
                delta, self._initial_window = value - self._initial_window, value
                for open_stream in self._send_windows:
                    self._send_windows[open_stream] += delta
                events.append(WindowOpened())
            elif setting == MAX_FRAME_SIZE:
                if not MAX_FRAME_BYTES <= value <= 2**24 - 1:
                    raise ProtocolError(PROTOCOL_ERROR, "a MAX_FRAME_SIZE out of range")
                self.max_outbound_frame_size = value
        self._out.append(frame(SETTINGS, ACK, 0))

    def _on_window_update(self, stream_id: int, payload: bytes, events: list[Event]) -> None:
        if len(payload) != 4:
            raise ProtocolError(FRAME_SIZE_ERROR, "a malformed WINDOW_UPDATE")
        increment = struct.unpack(">L", payload)[0] & MAX_WINDOW
        if not stream_id:
            if not increment:
                raise ProtocolError(PROTOCOL_ERROR, "a connection WINDOW_UPDATE of 0")
            self._send_window += increment
        elif stream_id in self._send_windows:
            self._send_windows[stream_id] += increment
        else:
            return
        events.append(WindowOpened())

    # --- sending ------------------------------------------------------------------------------

    def send_window(self, stream_id: int) -> int:
        """How many DATA bytes may go on `stream_id` now (0 for a stream that is gone)."""
        return min(self._send_windows.get(stream_id, 0), self._send_window)

    def send_headers(self, stream_id: int, fields: list[tuple[bytes, bytes]], end_stream: bool) -> None:
        """Queue a header block; `end_stream` ends the answer (trailers, or trailers-only)."""
        if stream_id not in self._send_windows:
            return  # reset by the client meanwhile
        block = encode_block(fields)
        size = self.max_outbound_frame_size
        first_flags = END_STREAM if end_stream else 0
        chunks = [block[offset : offset + size] for offset in range(0, len(block), size)] or [b""]
        for index, chunk in enumerate(chunks):
            last = END_HEADERS if index == len(chunks) - 1 else 0
            if index == 0:
                self._out.append(frame(HEADERS, first_flags | last, stream_id, chunk))
            else:
                self._out.append(frame(CONTINUATION, last, stream_id, chunk))
        if end_stream:
            del self._send_windows[stream_id]
            self._inbound_open.discard(stream_id)

    def send_data(self, stream_id: int, data: bytes) -> None:
        """Queue DATA within `send_window` and the frame size (the caller splits)."""
        if stream_id not in self._send_windows:
            return
        self._send_windows[stream_id] -= len(data)
        self._send_window -= len(data)
        self._out.append(frame(DATA, 0, stream_id, data))

    def goaway(self, code: int = 0) -> bytes:
        """A GOAWAY naming the last stream we will answer; written by the caller itself."""
        return frame(GOAWAY, 0, 0, struct.pack(">LL", self.highest_inbound_stream_id, code))
