"""Reading an HTTP/1.1 answer's body: which framing it has, and the bytes, within a size and a time.

Split from `http11` so each stays one concern: that module sends the request and reads
the status line and headers; this one knows the three ways a body ends (RFC 9112 §6.3):
after Content-Length bytes, at the last chunk of the chunked coding, or when the server
closes the connection. The socket reads themselves (each bounded by what is left until
the exchange's end) are `Reader`'s.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Mapping

__all__ = ["AnswerBroken", "BodyPastDeadline", "BodyTooLarge", "Reader", "read_body"]

_RECV_BYTES = 64 * 1024
_MAX_LINE = 4096  # a chunk-size line or a trailer field
_MAX_TRAILERS = 100
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_NO_BODY = frozenset({204, 304})


class AnswerBroken(Exception):
    """The answer is not HTTP/1.1 as it should be framed, or it ended before its end."""


class BodyTooLarge(Exception):
    """The body is larger than the limit; nothing past the limit was kept."""


class BodyPastDeadline(Exception):
    """The body was still arriving at the exchange's end."""


class Reader:
    """Reads from one socket into `buffer`, each read bounded by what is left until `ends` (monotonic)."""

    __slots__ = ("_ends", "_sock", "buffer", "in_body", "received")

    def __init__(self, sock: socket.socket, buffer: bytearray, ends: float) -> None:
        self._sock = sock
        self._ends = ends
        self.buffer = buffer
        self.in_body = False  # past the header section: running out of time is BodyPastDeadline
        self.received = False  # any byte of the answer arrived

    def more(self) -> bool:
        """Reads what has arrived (waiting for it); False when the server has closed the connection."""
        left = self._ends - time.monotonic()
        if left <= 0:
            if self.in_body:
                raise BodyPastDeadline
            raise TimeoutError("no answer by the deadline")
        self._sock.settimeout(left)
        try:
            data = self._sock.recv(_RECV_BYTES)
        except TimeoutError:
            if self.in_body:
                raise BodyPastDeadline from None
            raise
        if not data:
            return False
        self.received = True
        self.buffer += data
        if self.in_body and time.monotonic() > self._ends:
            raise BodyPastDeadline
        return True

    def need(self, size: int) -> None:
        """At least `size` bytes in the buffer, or AnswerBroken if the connection closes first."""
        while len(self.buffer) < size:
            if not self.more():
                raise AnswerBroken("closed before the end of the body")

    def line(self) -> bytes:
        """The next line without its CRLF (removed from the buffer)."""
        start = 0
        while (end := self.buffer.find(b"\r\n", start)) < 0:
            if len(self.buffer) > _MAX_LINE:
                raise AnswerBroken("line too long in the body")
            start = max(0, len(self.buffer) - 1)
            if not self.more():
                raise AnswerBroken("closed before the end of the body")
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line


def read_body(
    reader: Reader, method: str, status: int, fields: Mapping[str, str], max_body: int
) -> tuple[bytes, bool]:
    """(the body, whether it was delimited within the stream) for an answer with these header fields.

    A body that ends with the connection is not delimited: that connection cannot be reused.
    """
    if method == "HEAD" or status in _NO_BODY or status < 200:
        return b"", True
    reader.in_body = True
    coding = fields.get("transfer-encoding")
    if coding is not None:
        if coding.rsplit(",", 1)[-1].strip().lower() != "chunked":
            return _until_close(reader, max_body), False
        # With Content-Length too, the answer is odd (RFC 9112 §6.1): read it, but close afterwards.
        return _chunked(reader, max_body), "content-length" not in fields
    length = fields.get("content-length")
    if length is None:
        return _until_close(reader, max_body), False
    return _sized(reader, _content_length(length), max_body), True


def _content_length(value: str) -> int:
    values = {item.strip() for item in value.split(",")}
    only = values.pop()
    if values or not only.isascii() or not only.isdigit():
        raise AnswerBroken("invalid Content-Length")
    return int(only)


def _sized(reader: Reader, length: int, max_body: int) -> bytes:
    if length > max_body:
        raise BodyTooLarge
    reader.need(length)
    body = bytes(reader.buffer[:length])
    del reader.buffer[:length]
    return body


def _chunked(reader: Reader, max_body: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        digits = reader.line().split(b";", 1)[0].strip(b" \t")
        if not _CHUNK_SIZE.fullmatch(digits):
            raise AnswerBroken("malformed chunk size")
        chunk = int(digits, 16)
        if chunk == 0:
            break
        size += chunk
        if size > max_body:
            raise BodyTooLarge
        reader.need(chunk + 2)
        if reader.buffer[chunk : chunk + 2] != b"\r\n":
            raise AnswerBroken("chunk not followed by CRLF")
        parts.append(bytes(reader.buffer[:chunk]))
        del reader.buffer[: chunk + 2]
    for _ in range(_MAX_TRAILERS):
        if not reader.line():
            return b"".join(parts)
    raise AnswerBroken("too many trailer fields")


def _until_close(reader: Reader, max_body: int) -> bytes:
    while len(reader.buffer) <= max_body:
        if not reader.more():
            body = bytes(reader.buffer)
            reader.buffer.clear()
            return body
    raise BodyTooLarge
