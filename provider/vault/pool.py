"""A bounded, thread-safe pool of keep-alive HTTP/1.1 connections to one endpoint.

Shared by every thread that talks to one Vault node (and by the Kubernetes client for
the API server). An idle connection is checked before it is used: one the server has
closed meanwhile (EOF or a reset) is dropped, not written to. If the server closes a
kept connection just as a request goes out, before answering a byte (the classic stale
keep-alive race), the request is sent once more on a new connection; it is not sent
again after anything else, since the server may have acted on it.
"""

from __future__ import annotations

import threading
import time

from provider.vault.endpoint import Endpoint
from provider.vault.http11 import Answer, Connection, StaleConnection

__all__ = ["ConnectionPool"]

# What a new connection may take when the exchange's own end is (nearly) spent: the error
# is then the deadline's, not a zero timeout.
_MIN_CONNECT_SECONDS = 0.001


class ConnectionPool:
    """At most `size` idle connections are kept; more exchanges at once than that open more
    connections, closed when they end (urllib3's non-blocking pool did the same)."""

    def __init__(self, endpoint: Endpoint, size: int, max_body: int) -> None:
        self._endpoint = endpoint
        self._size = size
        self._max_body = max_body
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def exchange(self, head: bytes, method: str, connect: float, ends: float) -> Answer:
        """One answer to `head` (the request, body included), connecting within `connect` seconds.

        Raises what `Endpoint.open` and `Connection.exchange` raise, except StaleConnection.
        """
        connection = self._take()
        while True:
            if connection is None:
                left = max(ends - time.monotonic(), _MIN_CONNECT_SECONDS)
                connection = self._endpoint.open(min(connect, left))
            try:
                answer = connection.exchange(head, method, ends, self._max_body)
            except StaleConnection:
                # Only a reused connection goes stale, so this happens at most once per exchange.
                connection.close()
                connection = None
                continue
            except BaseException:
                connection.close()
                raise
            if answer.reusable:
                self._give_back(connection)
            else:
                connection.close()
            return answer

    def close(self) -> None:
        """Closes the idle connections now; ones in use are closed when they come back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _take(self) -> Connection | None:
        while True:
            with self._lock:
                if not self._idle:
                    return None
                connection = self._idle.pop()
            if connection.usable():
                return connection
            connection.close()

    def _give_back(self, connection: Connection) -> None:
        connection.reused = True
        with self._lock:
            if not self._closed and len(self._idle) < self._size:
                self._idle.append(connection)
                return
        connection.close()
