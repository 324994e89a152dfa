"""provider.serve.relief: a socket watched while its reader is busy wakes the relief thread, and only then."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from provider.serve.relief import Relief

WAIT = 5.0


@pytest.fixture
def relief() -> Iterator[Relief]:
    watcher = Relief()
    watcher.start()
    yield watcher
    watcher.stop()


def reader(
    sock: socket.socket, seen: list[bytes], woken: threading.Semaphore, again: bool = True
) -> Callable[[], bool]:
    def on_readable() -> bool:
        seen.append(sock.recv(100, socket.MSG_DONTWAIT))
        woken.release()
        return again

    return on_readable


def test_a_watched_socket_is_read_each_time_bytes_arrive_until_unwatched(relief: Relief) -> None:
    ours, peer = socket.socketpair()
    seen: list[bytes] = []
    woken = threading.Semaphore(0)
    relief.watch(ours.fileno(), reader(ours, seen, woken))
    peer.sendall(b"one")
    assert woken.acquire(timeout=WAIT)
    peer.sendall(b"two")
    assert woken.acquire(timeout=WAIT)
    relief.unwatch(ours.fileno())
    peer.sendall(b"three")
    assert not woken.acquire(timeout=0.3)
    assert seen == [b"one", b"two"]
    # Watched again: what waited meanwhile is read at once.
    relief.watch(ours.fileno(), reader(ours, seen, woken))
    assert woken.acquire(timeout=WAIT)
    assert seen[-1] == b"three"
    relief.forget(ours.fileno())
    ours.close()
    peer.close()


def test_a_reader_that_is_done_is_not_woken_again(relief: Relief) -> None:
    ours, peer = socket.socketpair()
    seen: list[bytes] = []
    woken = threading.Semaphore(0)
    relief.watch(ours.fileno(), reader(ours, seen, woken, again=False))
    peer.sendall(b"one")
    assert woken.acquire(timeout=WAIT)
    peer.sendall(b"two")
    assert not woken.acquire(timeout=0.3)
    assert seen == [b"one"]
    relief.forget(ours.fileno())
    ours.close()
    peer.close()


def test_stop_is_idempotent_and_watching_after_it_does_nothing() -> None:
    watcher = Relief()
    watcher.start()
    watcher.stop()
    watcher.stop()
    for thread in threading.enumerate():
        if thread.name == "rpc-relief":
            thread.join(WAIT)
    ours, peer = socket.socketpair()
    watcher.watch(ours.fileno(), lambda: True)
    watcher.unwatch(ours.fileno())
    watcher.forget(ours.fileno())
    assert not any(thread.name == "rpc-relief" for thread in threading.enumerate())
    ours.close()
    peer.close()
