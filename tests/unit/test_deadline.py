"""provider.deadline: the Mount's time budget on an injected clock, and cancellation."""

from __future__ import annotations

import threading
import time

import pytest

from provider.errors import Cancelled, DeadlineExceeded
from provider.vault.deadline import DEFAULT_BUDGET_SECONDS, Deadline


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("seconds", "budget"),
    [
        pytest.param(5.0, 5.0, id="as-given"),
        pytest.param(None, DEFAULT_BUDGET_SECONDS, id="no-deadline-is-kubelets-two-minutes"),
        pytest.param(1e9, DEFAULT_BUDGET_SECONDS, id="huge-deadline-capped"),
    ],
)
def test_budget(seconds: float | None, budget: float) -> None:
    """The budget is the caller's deadline, never more than kubelet's 120 s."""
    clock = FakeClock()
    assert Deadline(seconds, clock).remaining() == pytest.approx(budget)


def test_remaining_counts_down_with_the_clock() -> None:
    """remaining() is the budget less the time that passed on the injected clock."""
    clock = FakeClock()
    deadline = Deadline(10.0, clock)
    clock.now += 7.5
    assert deadline.remaining() == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("seconds", "elapsed"),
    [
        pytest.param(3.0, 3.0, id="exactly-spent"),
        pytest.param(3.0, 4.0, id="overspent"),
        pytest.param(-1.0, 0.0, id="negative-deadline"),
    ],
)
def test_spent_deadline_raises(seconds: float, elapsed: float) -> None:
    """With no time left, remaining() raises DeadlineExceeded saying the secrets were not all fetched."""
    clock = FakeClock()
    deadline = Deadline(seconds, clock)
    clock.now += elapsed
    with pytest.raises(DeadlineExceeded) as caught:
        deadline.remaining()
    assert str(caught.value) == "the Mount's deadline passed before all secrets were fetched"


def test_cancelled_deadline_raises_cancelled() -> None:
    """After cancel() (the caller went away), remaining() raises Cancelled even with time left."""
    deadline = Deadline(60.0, FakeClock())
    deadline.cancel()
    with pytest.raises(Cancelled) as caught:
        deadline.remaining()
    assert str(caught.value) == "the caller cancelled the Mount"


def test_sleep_is_cut_short_by_the_deadline() -> None:
    """A backoff sleep never outlasts the deadline: sleep(30) with 0.05 s left returns in about 0.05 s."""
    clock = FakeClock()
    deadline = Deadline(10.0, clock)
    clock.now += 9.95
    started = time.monotonic()
    deadline.sleep(30.0)
    assert time.monotonic() - started < 1.0


def test_sleep_raises_when_cancelled_during_the_wait() -> None:
    """A cancel() from another thread ends a backoff sleep at once with Cancelled."""
    deadline = Deadline(60.0)
    threading.Timer(0.05, deadline.cancel).start()
    started = time.monotonic()
    with pytest.raises(Cancelled) as caught:
        deadline.sleep(30.0)
    assert time.monotonic() - started < 5.0
    assert str(caught.value) == "the caller cancelled the Mount"


def test_a_cancel_before_the_first_sleep_still_ends_it() -> None:
    """Cancelled before any sleep began (no wakeup made yet): the sleep raises at once."""
    deadline = Deadline(60.0)
    deadline.cancel()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        deadline.sleep(30.0)
    assert time.monotonic() - started < 5.0


def test_a_second_sleep_is_cancelled_too() -> None:
    """After one sleep ran out, a cancel from another thread ends the next one."""
    deadline = Deadline(60.0)
    deadline.sleep(0.01)
    threading.Timer(0.05, deadline.cancel).start()
    with pytest.raises(Cancelled):
        deadline.sleep(30.0)
