"""The floor under a warm poll on this machine: what no provider's poll of scenario a can beat.

A floor poll is one gRPC Version call to the first provider (the socket, HTTP/2 and both
ends' wake-ups, with no Vault work), then the poll's distinct KV v2 reads written at once
on kept-alive connections straight to OpenBao, from one thread, each answer read to its
last byte and not parsed. The side-by-side pass sends one after each provider's poll, so
the floor sees the same machine: `p50 - floor` is what a provider adds, and `floor /
theirs` the best ratio any provider could reach here.

With a network distance (`--network-rtt-ms`, `rtt` here) the reads are written one round
trip late, as the proxy forwards each provider's: the floor then holds that round trip, once.

The reads carry a token of the bench policy (made by root for the run), never printed.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from bench.workload import Driver

__all__ = ["FloorPoll", "FloorTimes"]

_TIMEOUT_SECONDS = 10.0
_CHUNK = 65536


@dataclass(frozen=True)
class FloorTimes:
    """One floor poll: seconds for its Version call and for its reads."""

    version: float
    reads: float

    @property
    def total(self) -> float:
        return self.version + self.reads


class FloorPoll:
    """Raw reads of `paths` (`/v1/...`) at `vault` (http://host:port), after a Version call on `driver`."""

    def __init__(
        self, driver: Driver, vault: str, token: str, paths: Sequence[str], rtt: float = 0.0
    ) -> None:
        parts = urlsplit(vault)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"the floor reads from http://host:port only, got {vault!r}")
        self._driver = driver
        self._rtt = rtt
        self._address = (parts.hostname, parts.port)
        self._requests = [
            f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nX-Vault-Token: {token}\r\n"
            "X-Vault-Request: true\r\n\r\n".encode()
            for path in paths
        ]
        self._sockets: list[socket.socket | None] = [None] * len(paths)

    def close(self) -> None:
        for index, conn in enumerate(self._sockets):
            if conn is not None:
                conn.close()
            self._sockets[index] = None

    def poll(self) -> FloorTimes:
        """The times of one floor poll."""
        start = time.perf_counter()
        self._driver.version_round_trips(1)
        versioned = time.perf_counter()
        if self._rtt:
            time.sleep(self._rtt)
        for index, request in enumerate(self._requests):
            self._connection(index).sendall(request)
        for index, request in enumerate(self._requests):
            if not _read_answer(self._connection(index)):
                # OpenBao closed the idle connection: once more on a new one (rare; counted anyway).
                self._drop(index)
                conn = self._connection(index)
                conn.sendall(request)
                if not _read_answer(conn):
                    raise ConnectionError("OpenBao closed a new connection before answering")
        return FloorTimes(versioned - start, time.perf_counter() - versioned)

    def _connection(self, index: int) -> socket.socket:
        conn = self._sockets[index]
        if conn is None:
            conn = socket.create_connection(self._address, timeout=_TIMEOUT_SECONDS)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets[index] = conn
        return conn

    def _drop(self, index: int) -> None:
        conn, self._sockets[index] = self._sockets[index], None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()


def _read_answer(conn: socket.socket) -> bool:
    """Read one whole answer (Content-Length framed, as OpenBao sends reads); False if closed first."""
    data = bytearray()
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(_CHUNK)
        if not chunk:
            return False
        data += chunk
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(_CHUNK)
        if not chunk:
            return False
        body += chunk
    return True
