"""gRPC's few rules on top of HTTP/2, shared by our server and our health probe.

From the gRPC over HTTP/2 protocol description: a message is a 1-byte compressed flag
and a 4-byte big-endian length before the bytes; the deadline travels as
`grpc-timeout` (digits and a unit); the status ends the stream as trailers
`grpc-status` and a percent-encoded `grpc-message`.
"""

from __future__ import annotations

import struct
from urllib.parse import quote, unquote

from provider.serve.rpc_status import StatusCode

__all__ = [
    "CONTENT_TYPE",
    "WireError",
    "frame",
    "message_text",
    "parse_timeout",
    "read_status",
    "trailers",
    "unframe",
]

CONTENT_TYPE = b"application/grpc"
_PREFIX = struct.Struct(">BI")
_UNITS = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}
# Printable ASCII but '%' goes as it is; everything else is %XX-encoded UTF-8.
_PLAIN = "".join(chr(c) for c in range(0x20, 0x7F) if c != 0x25)


class WireError(ValueError):
    """The bytes are not a gRPC message we accept; the text says why, for the status."""

    def __init__(self, message: str, code: StatusCode = StatusCode.INTERNAL) -> None:
        super().__init__(message)
        self.code = code


def frame(message: bytes) -> bytes:
    return _PREFIX.pack(0, len(message)) + message


def unframe(body: bytes) -> bytes:
    """The one message a unary call carries."""
    if len(body) < _PREFIX.size:
        raise WireError("the request carries no complete gRPC message")
    compressed, length = _PREFIX.unpack_from(body)
    if compressed:
        raise WireError(
            "compressed messages are not supported; send them uncompressed", StatusCode.UNIMPLEMENTED
        )
    if len(body) != _PREFIX.size + length:
        raise WireError("a unary call carries exactly one message")
    return body[_PREFIX.size :]


def parse_timeout(value: bytes | None) -> float | None:
    """Seconds from a grpc-timeout header (`1S`, `500m`, ...); None when absent or malformed."""
    if not value or len(value) > 9 or value[-1:] not in _UNITS or not value[:-1].isdigit():
        return None
    return int(value[:-1]) * _UNITS[value[-1:]]


def message_text(details: str) -> bytes:
    return quote(details, safe=_PLAIN).encode("ascii")


def trailers(code: int, details: str) -> list[tuple[bytes, bytes]]:
    fields = [(b"grpc-status", str(code).encode("ascii"))]
    if details:
        fields.append((b"grpc-message", message_text(details)))
    return fields


def read_status(headers: dict[bytes, bytes]) -> tuple[int, str]:
    """The status and message a server's trailers (or trailers-only answer) carry."""
    raw = headers.get(b"grpc-status", b"")
    if not raw.isdigit():
        raise WireError("the answer carries no grpc-status")
    return int(raw), unquote(headers.get(b"grpc-message", b"").decode("ascii", "replace"))
