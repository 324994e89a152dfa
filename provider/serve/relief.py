"""While a connection's reader thread answers a call itself, one epoll thread reads what else arrives.

Why: handing every call to a worker thread was most of the CPU of a trivial call when
calls come as the driver's rotation sends them, one at a time and far apart (a cold
thread woken, the GIL passed between two; 0.58 against 0.13 ms of CPU per Version call
250 ms apart and back to back). A poll alone on its connection is therefore answered by
the reader itself (`rpc_connection`). Should another call, a PING, a WINDOW_UPDATE or a
cancellation arrive meanwhile, this thread is woken (EPOLLONESHOT, armed only for the
length of such a call) and reads it on the connection's behalf, so nothing waits for
the call to end. Arming and disarming are one epoll_ctl each; no thread is woken.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable

from provider.serve.logs import where_raised

__all__ = ["Relief"]

log = logging.getLogger("provider.rpc")

_ARMED = select.EPOLLIN | select.EPOLLONESHOT


class Relief:
    """One thread watching the sockets whose readers are busy; `start`, then `stop` once."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._wake_read, self._wake_write = os.pipe()
        self._epoll.register(self._wake_read, select.EPOLLIN)
        self._lock = threading.Lock()  # guards the two below and the epoll registrations
        # fd -> what reads for it; called on this thread, True to be woken again.
        self._watched: dict[int, Callable[[], bool]] = {}
        self._registered: set[int] = set()
        self._closed = False

    def start(self) -> None:
        threading.Thread(target=self._loop, name="rpc-relief", daemon=True).start()

    def stop(self) -> None:
        """End the thread (idempotent); watching afterwards does nothing."""
        with self._lock:
            if self._wake_write < 0:
                return
            wake, self._wake_write = self._wake_write, -1
        os.write(wake, b"x")
        os.close(wake)  # the byte stays readable at the other end

    def watch(self, fd: int, on_readable: Callable[[], bool]) -> None:
        """Call `on_readable` here when `fd` has bytes to read, until `unwatch`."""
        with self._lock:
            if self._closed:
                return  # stopping: the connection is being cut anyway
            self._watched[fd] = on_readable
            if fd in self._registered:
                self._epoll.modify(fd, _ARMED)
            else:
                self._epoll.register(fd, _ARMED)
                self._registered.add(fd)

    def unwatch(self, fd: int) -> None:
        with self._lock:
            if self._watched.pop(fd, None) is not None and not self._closed:
                self._epoll.modify(fd, 0)

    def forget(self, fd: int) -> None:
        """Before `fd` is closed: its number may soon name another socket."""
        with self._lock:
            self._watched.pop(fd, None)
            if fd in self._registered and not self._closed:
                self._registered.discard(fd)
                self._epoll.unregister(fd)

    def _loop(self) -> None:
        while True:
            for fd, _ in self._epoll.poll():
                if fd == self._wake_read:
                    self._close()
                    return
                with self._lock:
                    on_readable = self._watched.get(fd)
                if on_readable is None:
                    continue
                try:
                    again = on_readable()
                except Exception as exc:  # a bug of ours: keep watching the others
                    log.error(
                        "unexpected %s reading for a busy connection\n%s",
                        type(exc).__name__,
                        where_raised(exc),
                    )
                    again = False
                with self._lock:
                    if again and self._watched.get(fd) is on_readable and not self._closed:
                        self._epoll.modify(fd, _ARMED)

    def _close(self) -> None:
        with self._lock:
            self._closed = True
            self._watched.clear()
            self._registered.clear()
            self._epoll.close()
        os.close(self._wake_read)
