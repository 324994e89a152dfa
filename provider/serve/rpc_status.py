"""What a handler sees of its RPC: the status codes, the call's context, and how it fails.

The shape is grpcio's (`time_remaining`, `add_callback`, `abort`), so the servicer reads
as any gRPC servicer does, but nothing here loads grpcio: the serving provider speaks
gRPC through `rpc_server`, and grpcio stays a tool of the tests and the driver client.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from typing import NoReturn

__all__ = ["CallContext", "RpcAbort", "StatusCode"]


class StatusCode(enum.IntEnum):
    """The gRPC status codes, numbered as on the wire (grpc-status)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class RpcAbort(Exception):
    """Raised by `CallContext.abort`: the call ends with this status and message."""

    def __init__(self, code: StatusCode, details: str) -> None:
        super().__init__(code, details)
        self.code = code
        self.details = details


class CallContext:
    """One call's deadline (from grpc-timeout) and the callbacks to run when it ends or is cancelled."""

    def __init__(self, timeout: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._expires = None if timeout is None else clock() + timeout
        self._callbacks: list[Callable[[], object]] = []
        self._lock = threading.Lock()
        self._ended = False

    def time_remaining(self) -> float | None:
        """Seconds until the caller's deadline, or None when it set none."""
        return None if self._expires is None else max(self._expires - self._clock(), 0.0)

    def add_callback(self, callback: Callable[[], object]) -> None:
        """Run `callback` once when the call ends, whether answered, cancelled or cut off."""
        with self._lock:
            if not self._ended:
                self._callbacks.append(callback)
                return
        callback()

    def abort(self, code: StatusCode, details: str) -> NoReturn:
        raise RpcAbort(code, details)

    def end(self) -> None:
        """The call is over (or its caller gone): run the callbacks, once."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()
