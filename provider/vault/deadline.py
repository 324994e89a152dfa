"""The time a Mount may still take, and whether its caller has gone away."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from provider.errors import Cancelled, DeadlineExceeded

__all__ = ["Deadline"]

# kubelet gives NodePublishVolume two minutes; never plan for longer than that.
DEFAULT_BUDGET_SECONDS = 120.0
_WAKEUP_GUARD = threading.Lock()


class Deadline:
    """A point in (monotonic) time plus a cancellation flag set by the RPC layer."""

    def __init__(self, seconds: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # gRPC reports "no deadline" as None or as an enormous number.
        budget = DEFAULT_BUDGET_SECONDS if seconds is None else min(max(seconds, 0.0), DEFAULT_BUDGET_SECONDS)
        self._expires = clock() + budget
        self._cancelled = False
        # Made by the first `sleep` only: most Mounts never wait, and an Event is a lock and a condition.
        self._wakeup: threading.Event | None = None

    def cancel(self) -> None:
        self._cancelled = True
        wakeup = self._wakeup
        if wakeup is not None:
            wakeup.set()

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` (within the deadline); raises at once when the caller cancels."""
        if self._wakeup is None:
            with _WAKEUP_GUARD:  # two sleepers make one Event between them
                if self._wakeup is None:
                    self._wakeup = threading.Event()
        # After the Event exists: a cancel from now on sets it, one before it set the flag.
        if self._cancelled or self._wakeup.wait(min(seconds, max(self._expires - self._clock(), 0.0))):
            raise Cancelled("the caller cancelled the Mount")

    def remaining(self) -> float:
        """Seconds left; raises when none are left or the caller cancelled."""
        if self._cancelled:
            raise Cancelled("the caller cancelled the Mount")
        left = self._expires - self._clock()
        if left <= 0:
            raise DeadlineExceeded("the Mount's deadline passed before all secrets were fetched")
        return left
