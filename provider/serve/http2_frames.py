"""HTTP/2's frames as `http2` reads and writes them: layouts, flags, error codes and events.

RFC 9113 §4 and §6: a 9-byte header (24-bit length, type, flags, 31-bit stream) and a
payload per type. Only what a server of unary gRPC calls meets is named here.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

__all__ = [
    "ACK",
    "COMPRESSION_ERROR",
    "CONTINUATION",
    "DATA",
    "DEFAULT_WINDOW",
    "END_HEADERS",
    "END_STREAM",
    "FLOW_CONTROL_ERROR",
    "FRAME_HEAD",
    "FRAME_SIZE_ERROR",
    "GOAWAY",
    "HEADERS",
    "HEADER_TABLE_SIZE",
    "INITIAL_WINDOW_SIZE",
    "MAX_CONCURRENT_STREAMS",
    "MAX_FRAME_BYTES",
    "MAX_FRAME_SIZE",
    "MAX_HEADER_BLOCK",
    "MAX_HEADER_LIST_SIZE",
    "MAX_WINDOW",
    "PING",
    "PREFACE",
    "PRIORITY_FLAG",
    "PROTOCOL_ERROR",
    "PUSH_PROMISE",
    "REFUSED_STREAM",
    "RST_STREAM",
    "SETTINGS",
    "WINDOW_UPDATE",
    "Data",
    "Event",
    "Headers",
    "ProtocolError",
    "Reset",
    "WindowOpened",
    "frame",
    "take_frames",
    "unpadded",
    "window_update",
]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DEFAULT_WINDOW = 65535
MAX_WINDOW = 2**31 - 1
MAX_FRAME_BYTES = 16384  # the largest frame we accept: the protocol's default, never raised
MAX_HEADER_BLOCK = 64 * 1024  # as announced in MAX_HEADER_LIST_SIZE

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS = 0, 1, 2, 3, 4
PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 5, 6, 7, 8, 9
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY_FLAG = 0x4, 0x8, 0x20

HEADER_TABLE_SIZE, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE = 0x1, 0x3, 0x4
MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE = 0x5, 0x6

PROTOCOL_ERROR, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR = 0x1, 0x3, 0x6
REFUSED_STREAM, COMPRESSION_ERROR = 0x7, 0x9

FRAME_HEAD = struct.Struct(">BHBBL")  # a 24-bit length as a byte and a short, type, flags, stream


class ProtocolError(Exception):
    """The peer broke HTTP/2: the connection ends with a GOAWAY carrying `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class Headers(NamedTuple):
    """A request's header block (names lower-case bytes) arrived; `ended`: no body follows."""

    stream_id: int
    fields: dict[bytes, bytes]
    ended: bool


class Data(NamedTuple):
    stream_id: int
    data: bytes
    ended: bool


class Reset(NamedTuple):
    """The client cancelled the stream (RST_STREAM)."""

    stream_id: int


class WindowOpened(NamedTuple):
    """The peer granted more send window (WINDOW_UPDATE or a larger initial window)."""


Event = Headers | Data | Reset | WindowOpened


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    size = len(payload)
    return FRAME_HEAD.pack(size >> 16, size & 0xFFFF, kind, flags, stream_id) + payload


def take_frames(buffer: bytearray) -> list[tuple[int, int, int, bytes]]:
    """The whole frames at the start of `buffer` as (type, flags, stream, payload), removed from it.

    A frame still arriving stays in the buffer; one larger than we accept is a FRAME_SIZE_ERROR.
    """
    frames = []
    start = 0
    while len(buffer) - start >= 9:
        high, low, kind, flags, stream_id = FRAME_HEAD.unpack_from(buffer, start)
        size = high << 16 | low
        if size > MAX_FRAME_BYTES:
            raise ProtocolError(FRAME_SIZE_ERROR, "a frame larger than SETTINGS_MAX_FRAME_SIZE")
        end = start + 9 + size
        if len(buffer) < end:
            break
        frames.append((kind, flags, stream_id & MAX_WINDOW, bytes(buffer[start + 9 : end])))
        start = end
    del buffer[:start]
    return frames


def window_update(stream_id: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">L", increment))


def unpadded(flags: int, payload: bytes) -> bytes:
    if not flags & PADDED:
        return payload
    if not payload or payload[0] >= len(payload):
        raise ProtocolError(PROTOCOL_ERROR, "padding longer than the frame")
    return payload[1 : len(payload) - payload[0]]
