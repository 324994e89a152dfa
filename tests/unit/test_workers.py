"""provider.serve.workers: calls run on a bounded set of threads, kept between calls."""

from __future__ import annotations

import logging
import threading

import pytest

from provider.serve.workers import Workers

WAIT = 10.0


def test_calls_run_on_at_most_size_threads_and_a_waiting_thread_is_reused() -> None:
    workers = Workers(2, "test")
    release = threading.Event()
    started: list[str] = []
    all_started = threading.Semaphore(0)

    def blocked() -> None:
        started.append(threading.current_thread().name)
        all_started.release()
        assert release.wait(WAIT)

    for _ in range(3):
        workers.submit(blocked)
    assert all_started.acquire(timeout=WAIT)
    assert all_started.acquire(timeout=WAIT)
    # Two threads are busy: the third call waits for one of them.
    assert not all_started.acquire(timeout=0.2)
    release.set()
    assert all_started.acquire(timeout=WAIT)
    assert len(set(started)) == 2
    done = threading.Event()

    def last() -> None:
        started.append(threading.current_thread().name)
        done.set()

    workers.submit(last)
    assert done.wait(WAIT)
    assert started[-1] in started[:3]
    workers.stop()


def test_a_failing_call_is_logged_and_its_thread_serves_the_next(caplog: pytest.LogCaptureFixture) -> None:
    workers = Workers(1, "test")
    done = threading.Event()

    secret = "-".join(("s3cr3t", "value"))

    def failing() -> None:
        raise ValueError(secret)

    with caplog.at_level(logging.ERROR, logger="provider.rpc"):
        workers.submit(failing)
        workers.submit(done.set)
        assert done.wait(WAIT)
    assert [record.getMessage().splitlines()[0] for record in caplog.records] == [
        "unexpected ValueError in a worker"
    ]
    assert secret not in caplog.text
    workers.stop()


def test_stop_drops_what_has_not_started_and_refuses_more() -> None:
    workers = Workers(1, "test")
    release = threading.Event()
    running = threading.Event()
    ran: list[str] = []

    def first() -> None:
        running.set()
        assert release.wait(WAIT)
        ran.append("first")

    workers.submit(first)
    assert running.wait(WAIT)
    workers.submit(lambda: ran.append("queued"))
    workers.stop()
    release.set()
    with pytest.raises(RuntimeError) as caught:
        workers.submit(lambda: ran.append("late"))
    assert str(caught.value) == "the workers are stopped"
    for thread in threading.enumerate():
        if thread.name.startswith("test_"):
            thread.join(WAIT)
    assert ran == ["first"]
