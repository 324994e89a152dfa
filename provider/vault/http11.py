"""HTTP/1.1 on one connection: the request head we send, and the one answer read back.

Why our own: on a warm poll urllib3 and http.client were a fifth to a third of the
provider's CPU (py-spy), for machinery Vault's API never needs. This is the protocol
only, RFC 9112 as Vault and OpenBao speak it: a status line, headers, a body framed by
Content-Length, chunked transfer coding or the connection's close; no compression, no
100-continue, no pipelining: one request at a time per connection. `send` and `answer`
split an exchange, so one thread can write requests on several connections before it
reads their answers. Opening sockets is `endpoint`'s job, the pool `transport`'s.

Every read is bounded by the exchange's end (a monotonic time) and the body by a size.
Exceptions say what went wrong in words of our own and never carry a header or a body:
they hold tokens and secrets.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import ssl
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from provider.vault.http11_body import AnswerBroken, BodyPastDeadline, BodyTooLarge, Reader, read_body

__all__ = [
    "MAX_HEAD_BYTES",
    "Answer",
    "AnswerBroken",
    "BodyPastDeadline",
    "BodyTooLarge",
    "ClosedUnanswered",
    "Connection",
    "Headers",
    "StaleConnection",
    "request_head",
]

# A status line and headers longer than this are not an answer we can use.
MAX_HEAD_BYTES = 64 * 1024
_MAX_FIELDS = 100
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# What may stay unescaped in a request target (RFC 3986 pchar, "/" and "?"), and "%" of escapes made.
_TARGET_UNSAFE = re.compile(r"[^A-Za-z0-9/?:@!$&'()*+,;=\-._~%]")
# Control characters (tab allowed) have no place in a header value: they would end the line.
_VALUE_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_STATUS_LINE = re.compile(r"HTTP/1\.([01]) ([0-9]{3})(?: .*)?")


class StaleConnection(Exception):
    """A reused connection ended before a byte of the answer: the server closed it while idle.

    The request did not reach a server willing to answer it, so it is safe to send again
    on a fresh connection.
    """


class ClosedUnanswered(ConnectionError):
    """A fresh connection closed before a byte of an answer."""

    def __init__(self) -> None:
        super().__init__(0, "the connection closed before an answer")


class Headers(Mapping[str, str]):
    """An answer's header fields, looked up in any case; repeated fields joined with ", "."""

    __slots__ = ("_fields",)

    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = fields  # lower-case names

    def __getitem__(self, name: str) -> str:
        return self._fields[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"Headers({sorted(self._fields)})"  # names only: values may be sensitive


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Headers
    body: bytes
    reusable: bool  # the connection may carry another exchange


def request_head(
    method: str, target: str, host: str, headers: Mapping[str, str], body: bytes | None
) -> bytes:
    """The request line and header section; raises ValueError (naming no value) for an unsafe header."""
    if _TARGET_UNSAFE.search(target):
        target = _TARGET_UNSAFE.sub(_escaped, target)  # as urllib3 did: UTF-8, percent-escaped
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        if _VALUE_UNSAFE.search(value) or _VALUE_UNSAFE.search(name) or ":" in name:
            raise ValueError(f"the {name.split(':')[0]!r} header holds a line break or control character")
        lines.append(f"{name}: {value}")
    if body is not None or method in _BODY_METHODS:
        lines.append(f"Content-Length: {len(body or b'')}")
    lines.append("\r\n")
    try:
        return "\r\n".join(lines).encode("latin-1")  # what http.client sent; Vault's are all ASCII
    except UnicodeEncodeError:
        raise ValueError("a header holds a character outside Latin-1") from None


def _escaped(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8"))


class Connection:
    """One open socket to one node, with what was read past the last answer (nothing, normally)."""

    __slots__ = ("_buffer", "reused", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reused = False
        self._buffer = bytearray()

    def usable(self) -> bool:
        """Whether an idle connection is still open: readable while idle means EOF, a reset or junk."""
        if self._buffer or (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()):
            return False
        try:
            poller = select.poll()
            poller.register(self.sock, select.POLLIN)
            return not poller.poll(0)
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    # An exchange is `send`, then `answer`, each bounded by `ends`. Both raise StaleConnection
    # (send again elsewhere) or OSError (TimeoutError: nothing by `ends`); `answer` also
    # AnswerBroken, BodyTooLarge or BodyPastDeadline. The caller closes the connection after any.

    def send(self, head: bytes, ends: float) -> None:
        """Writes `head` (with any body); its answer is read by `answer`."""
        left = ends - time.monotonic()
        if left <= 0:
            raise TimeoutError("no time left to send")
        self.sock.settimeout(left)
        try:
            self.sock.sendall(head)
        except ConnectionError:
            if self.reused:
                raise StaleConnection from None
            raise

    def answer(self, method: str, ends: float, max_body: int) -> Answer:
        """The answer to what `send` wrote, within `max_body` bytes."""
        reader = Reader(self.sock, self._buffer, ends)
        while True:
            status, version, fields = self._read_head(reader)
            if not 100 <= status < 200 or status == 101:
                break  # 1xx other than 101 are interim: the real answer follows
        body, delimited = read_body(reader, method, status, fields, max_body)
        return Answer(status, Headers(fields), body, delimited and _keeps_alive(version, fields))

    def _read_head(self, reader: Reader) -> tuple[int, int, dict[str, str]]:
        buffer = self._buffer
        start = 0
        while (end := buffer.find(b"\r\n\r\n", start)) < 0:
            if len(buffer) > MAX_HEAD_BYTES:
                raise AnswerBroken("header section too long")
            start = max(0, len(buffer) - 3)
            if not reader.more():
                if reader.received:
                    raise AnswerBroken("closed inside the header section")
                if self.reused:
                    raise StaleConnection
                raise ClosedUnanswered
        if end > MAX_HEAD_BYTES:
            raise AnswerBroken("header section too long")
        head = buffer[:end].decode("latin-1")
        del buffer[: end + 4]
        return _parse_head(head)


def _parse_head(head: str) -> tuple[int, int, dict[str, str]]:
    """(status, minor version, lower-case field name → value) from a header section."""
    status_line, *lines = head.split("\r\n")
    matched = _STATUS_LINE.fullmatch(status_line)
    if matched is None:
        raise AnswerBroken("not an HTTP/1.x status line")
    if len(lines) > _MAX_FIELDS:
        raise AnswerBroken("too many header fields")
    fields: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip(" \t"):
            raise AnswerBroken("malformed header field")
        key = name.lower()
        value = value.strip(" \t")
        fields[key] = f"{fields[key]}, {value}" if key in fields else value
    return int(matched.group(2)), int(matched.group(1)), fields


def _keeps_alive(minor_version: int, fields: Mapping[str, str]) -> bool:
    tokens = {token.strip().lower() for token in fields.get("connection", "").split(",")}
    if "close" in tokens:
        return False
    return minor_version == 1 or "keep-alive" in tokens
