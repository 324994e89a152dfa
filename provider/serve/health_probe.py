"""One grpc.health.v1 Check over a unix socket: the question /health/live and /health/ready ask.

A fresh HTTP/2 connection per probe (the kubelet asks every few seconds), so a server
that stopped accepting is seen at once, and no gRPC client library sits in the
provider's memory for the sake of one call.
"""

from __future__ import annotations

import socket
import time

from provider.serve import grpc_wire
from provider.serve.header_coding import HeaderDecoder, HeaderError, encode_block
from provider.serve.http2_frames import (
    ACK,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    MAX_HEADER_BLOCK,
    PING,
    PREFACE,
    RST_STREAM,
    SETTINGS,
    ProtocolError,
    frame,
    take_frames,
    unpadded,
)
from provider.serve.messages import HEALTH_STATUS_NAMES, SERVING, HealthCheckRequest, HealthCheckResponse
from provider.serve.rpc_status import StatusCode

__all__ = ["check_health"]

_CHECK = "/grpc.health.v1.Health/Check"


class _Failed(Exception):
    def __init__(self, code: StatusCode) -> None:
        super().__init__(code)
        self.code = code


def check_health(socket_path: str, timeout: float) -> str | None:
    """None when the server there answers SERVING for the whole server (""), else what it said."""
    try:
        answer = _call(socket_path, timeout)
    except _Failed as failed:
        return f"gRPC server not answering: {failed.code.name}"
    if answer.status == SERVING:
        return None
    return f"gRPC server is {HEALTH_STATUS_NAMES.get(answer.status, str(answer.status))}"


def _call(socket_path: str, timeout: float) -> HealthCheckResponse:
    ends = time.monotonic() + timeout
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(socket_path)
            return _exchange(sock, ends, timeout)
    except TimeoutError:
        raise _Failed(StatusCode.DEADLINE_EXCEEDED) from None
    except (OSError, ProtocolError, HeaderError, grpc_wire.WireError, ValueError):
        raise _Failed(StatusCode.UNAVAILABLE) from None


def _exchange(sock: socket.socket, ends: float, timeout: float) -> HealthCheckResponse:
    """One call on stream 1 of a new connection: its answer, or _Failed with the status it ended with."""
    request = [
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", _CHECK.encode()),
        (b":authority", b"localhost"),
        (b"content-type", grpc_wire.CONTENT_TYPE),
        (b"te", b"trailers"),
        (b"grpc-timeout", f"{max(int(timeout * 1000), 1)}m".encode()),
    ]
    message = grpc_wire.frame(HealthCheckRequest(service="").encode())
    sock.sendall(
        PREFACE
        + frame(SETTINGS, 0, 0)
        + frame(HEADERS, END_HEADERS, 1, encode_block(request))
        + frame(DATA, END_STREAM, 1, message)
    )
    decoder = HeaderDecoder(max_list_size=MAX_HEADER_BLOCK)
    headers: dict[bytes, bytes] = {}
    block = bytearray()
    body = bytearray()
    buffer = bytearray()
    ended = False
    while True:
        sock.settimeout(max(ends - time.monotonic(), 0.001))
        data = sock.recv(65536)
        if not data:
            raise _Failed(StatusCode.UNAVAILABLE)
        buffer += data
        replies = []
        for kind, flags, stream_id, payload in take_frames(buffer):
            if kind == SETTINGS and not flags & ACK:
                replies.append(frame(SETTINGS, ACK, 0))
            elif kind == PING and not flags & ACK:
                replies.append(frame(PING, ACK, 0, payload))
            elif kind in (RST_STREAM, GOAWAY) and stream_id in (0, 1) and not (kind == GOAWAY and body):
                raise _Failed(StatusCode.UNAVAILABLE)
            elif stream_id != 1:
                continue
            elif kind in (HEADERS, CONTINUATION):
                block += unpadded(flags, payload) if kind == HEADERS else payload
                if flags & END_HEADERS:
                    headers.update(decoder.decode(block))
                    block.clear()
            elif kind == DATA:
                body += unpadded(flags, payload)
            ended = ended or (kind in (HEADERS, DATA) and bool(flags & END_STREAM))
            if ended and not block:  # the last header block may follow in CONTINUATION frames
                return _answer(headers, body)
        if replies:
            sock.sendall(b"".join(replies))


def _answer(headers: dict[bytes, bytes], body: bytearray) -> HealthCheckResponse:
    code, _ = grpc_wire.read_status(headers)
    if code != StatusCode.OK:
        raise _Failed(StatusCode(code) if code in StatusCode._value2member_map_ else StatusCode.UNKNOWN)
    return HealthCheckResponse.decode(grpc_wire.unframe(bytes(body)))
