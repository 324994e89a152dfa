"""Our gRPC server: unary methods over HTTP/2 on unix sockets, drained gracefully.

The provider's whole gRPC surface is three unary methods on a socket only the driver
reaches, so the server is this and `rpc_connection`, on our own server side of HTTP/2
(`http2`, `header_coding`) and `workers`. grpcio's server cost 22 MiB of RSS on every node before
the first Mount, and about 0.4 ms more CPU per call (`python -m bench`, the README's figures).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable

from provider.serve.relief import Relief
from provider.serve.rpc_connection import Connection, Limits, Method
from provider.serve.workers import Workers

__all__ = ["Method", "RpcServer"]

log = logging.getLogger("provider.rpc")

_BACKLOG = 128


class RpcServer:
    """Listens on unix sockets; `start`, then `stop(grace)` once."""

    def __init__(self, methods: dict[str, Method], workers: int, limits: Limits) -> None:
        self._methods = methods
        self._limits = limits
        self._pool = Workers(workers, "rpc")
        self._relief = Relief()
        self._listeners: list[socket.socket] = []
        self._connections: set[Connection] = set()
        self._idle = threading.Condition()  # guards the two below
        self._running_calls = 0
        self._stopping = False

    def listen(self, path: str) -> None:
        """Bind and listen on a unix socket path; raises OSError when it cannot."""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(path)
            listener.listen(_BACKLOG)
        except OSError:
            listener.close()
            raise
        self._listeners.append(listener)

    def start(self) -> None:
        self._relief.start()
        for listener in self._listeners:
            threading.Thread(target=self._accept, args=(listener,), name="rpc-accept", daemon=True).start()

    def stop(self, grace_seconds: float | None) -> None:
        """No new connections or calls; calls begun may finish within the grace, then all is cut."""
        with self._idle:
            self._stopping = True
            connections = list(self._connections)
        for listener in self._listeners:
            _shut(listener)
            listener.close()
        for connection in connections:
            connection.drain()
        ends = time.monotonic() + (grace_seconds or 0.0)
        with self._idle:
            while self._running_calls and (left := ends - time.monotonic()) > 0:
                self._idle.wait(left)
            connections = list(self._connections)
        for connection in connections:
            connection.close()
        self._pool.stop()
        self._relief.stop()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return  # shut down by `stop`
            connection = Connection(sock, self._methods, self._limits, self, self._relief)
            with self._idle:
                if self._stopping:
                    sock.close()
                    continue
                self._connections.add(connection)
            threading.Thread(target=self._serve, args=(connection,), name="rpc-conn", daemon=True).start()

    def _serve(self, connection: Connection) -> None:
        try:
            connection.serve()
        finally:
            with self._idle:
                self._connections.discard(connection)

    def run_here(self, run: Callable[[], None]) -> None:
        """A call on the connection's own thread, counted as a worker's is."""
        with self._idle:
            self._running_calls += 1
        self._run_counted(run)

    def submit(self, run: Callable[[], None]) -> None:
        """A call on a worker thread."""
        with self._idle:
            self._running_calls += 1
        try:
            self._pool.submit(lambda: self._run_counted(run))
        except RuntimeError:  # the pool is stopped: the connection is being cut anyway
            with self._idle:
                self._running_calls -= 1

    def _run_counted(self, run: Callable[[], None]) -> None:
        """A call already counted as running; counted done when it ends, however it ends."""
        try:
            run()
        finally:
            with self._idle:
                self._running_calls -= 1
                self._idle.notify_all()


def _shut(listener: socket.socket) -> None:
    # A blocked accept wakes only when the listening socket is shut down, not when closed.
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)
