"""One grpc.health.v1 Check over a unix socket: the question /health/live and /health/ready ask.

A fresh HTTP/2 connection per probe (the kubelet asks every few seconds), so a server
that stopped accepting is seen at once, and no gRPC client library sits in the
provider's memory for the sake of one call.
"""

from __future__ import annotations

import socket
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from grpc_health.v1 import health_pb2

from provider.serve import grpc_wire
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
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    return None if answer.status == health_pb2.HealthCheckResponse.SERVING else f"gRPC server is {status}"


def _call(socket_path: str, timeout: float) -> health_pb2.HealthCheckResponse:
    ends = time.monotonic() + timeout
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(socket_path)
            return _exchange(sock, ends, timeout)
    except TimeoutError:
        raise _Failed(StatusCode.DEADLINE_EXCEEDED) from None
    except (OSError, h2.exceptions.ProtocolError, grpc_wire.WireError, ValueError):
        raise _Failed(StatusCode.UNAVAILABLE) from None


def _exchange(sock: socket.socket, ends: float, timeout: float) -> health_pb2.HealthCheckResponse:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    request = [
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", _CHECK.encode()),
        (b":authority", b"localhost"),
        (b"content-type", grpc_wire.CONTENT_TYPE),
        (b"te", b"trailers"),
        (b"grpc-timeout", f"{max(int(timeout * 1000), 1)}m".encode()),
    ]
    conn.send_headers(1, request)
    conn.send_data(
        1, grpc_wire.frame(health_pb2.HealthCheckRequest(service="").SerializeToString()), end_stream=True
    )
    sock.sendall(conn.data_to_send())
    headers: dict[bytes, bytes] = {}
    body = bytearray()
    while True:
        sock.settimeout(max(ends - time.monotonic(), 0.001))
        data = sock.recv(65536)
        if not data:
            raise _Failed(StatusCode.UNAVAILABLE)
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                headers.update(dict(event.headers or ()))
            elif isinstance(event, h2.events.DataReceived):
                body += event.data or b""
                conn.acknowledge_received_data(event.flow_controlled_length, 1)
            elif isinstance(event, h2.events.StreamReset):
                raise _Failed(StatusCode.UNAVAILABLE)
            elif isinstance(event, h2.events.StreamEnded):
                code, _ = grpc_wire.read_status(headers)
                if code != StatusCode.OK:
                    raise _Failed(
                        StatusCode(code) if code in StatusCode._value2member_map_ else StatusCode.UNKNOWN
                    )
                return health_pb2.HealthCheckResponse.FromString(grpc_wire.unframe(bytes(body)))
        pending = conn.data_to_send()
        if pending:
            sock.sendall(pending)
