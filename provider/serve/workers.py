"""The threads that run calls: started as calls need them, up to a bound, then kept for the next.

Why not `ThreadPoolExecutor`: the server never reads a call's result, and the executor
makes a Future (a condition variable and a lock) and a work item for each one, a
few percent of a warm poll's CPU. Here a call is one queue entry.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from provider.serve.logs import where_raised

__all__ = ["Workers"]

log = logging.getLogger("provider.rpc")


class Workers:
    """Runs each submitted callable on one of at most `size` threads, in the order submitted."""

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        # One permit per thread waiting for work: a call takes one instead of starting a thread.
        self._waiting = threading.Semaphore(0)
        self._guard = threading.Lock()  # guards the two below
        self._threads = 0
        self._stopped = False

    def submit(self, run: Callable[[], None]) -> None:
        """Queue `run`; raises RuntimeError after `stop`."""
        with self._guard:
            if self._stopped:
                raise RuntimeError("the workers are stopped")
            self._queue.put(run)
            if self._waiting.acquire(blocking=False) or self._threads >= self._size:
                return
            self._threads += 1
        threading.Thread(target=self._work, name=f"{self._name}_{self._threads}", daemon=True).start()

    def stop(self) -> None:
        """Drop what has not started and let every thread end after its current call."""
        with self._guard:
            self._stopped = True
            threads = self._threads
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        for _ in range(threads):
            self._queue.put(None)

    def _work(self) -> None:
        while (run := self._queue.get()) is not None:
            try:
                run()
            except Exception as exc:  # the caller's own handling failed: keep the thread
                log.error("unexpected %s in a worker\n%s", type(exc).__name__, where_raised(exc))
            self._waiting.release()
