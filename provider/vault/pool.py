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
from collections.abc import Callable
from dataclasses import dataclass, field

from provider.vault.endpoint import Endpoint
from provider.vault.http11 import Answer, Connection, StaleConnection

__all__ = ["ConnectionPool", "InFlight"]

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

        Raises what `Endpoint.open`, `Connection.send` and `Connection.answer` raise, except
        StaleConnection.
        """
        return self.begin(head, method, connect, ends).answer()

    def begin(self, head: bytes, method: str, connect: float, ends: float) -> InFlight:
        """Sends `head` now; its `answer()` is read later, so several requests can be out at once.

        A failure to connect or send is raised by `answer()`, not here: the caller reads the
        answers in the order it began them and meets each failure in its place.
        """
        flight = InFlight(self._endpoint, self._max_body, self._give_back, head, method, connect, ends)
        flight.connection = self._take()
        try:
            flight.send()
        except Exception as exc:  # raised again by answer(), in its place
            flight.failure = exc
        return flight

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


@dataclass(slots=True, eq=False)
class InFlight:
    """One request sent (or that failed to go) on a connection of the pool, its answer not read yet."""

    endpoint: Endpoint
    max_body: int
    give_back: Callable[[Connection], None]
    head: bytes = field(repr=False)  # holds the token
    method: str
    connect: float
    ends: float
    connection: Connection | None = None
    failure: Exception | None = None

    def send(self) -> None:
        """Writes the request, on a new connection unless a kept one was taken (then closed on failure)."""
        try:
            while True:
                if self.connection is None:
                    left = max(self.ends - time.monotonic(), _MIN_CONNECT_SECONDS)
                    self.connection = self.endpoint.open(min(self.connect, left))
                try:
                    self.connection.send(self.head, self.ends)
                    return
                except StaleConnection:
                    # Only a reused connection goes stale, so this happens at most once per exchange.
                    self.connection.close()
                    self.connection = None
        except BaseException:
            if self.connection is not None:
                self.connection.close()
                self.connection = None
            raise

    def answer(self) -> Answer:
        """The answer (the connection goes back to the pool), or what went wrong sending or reading it."""
        if self.failure is not None:
            raise self.failure
        connection = self.connection
        assert connection is not None, "answer() is read once"
        self.connection = None
        try:
            answer = connection.answer(self.method, self.ends, self.max_body)
        except StaleConnection:
            # A kept connection the server closed as the request went out, before any answer:
            # it did not see the request, so it goes once more on a new connection.
            connection.close()
            self.send()
            return self.answer()
        except BaseException:
            connection.close()
            raise
        if answer.reusable:
            self.give_back(connection)
        else:
            connection.close()
        return answer
