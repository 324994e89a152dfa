"""provider.retry: which Vault answers are retried, and the backoff schedule with injected randomness."""

from __future__ import annotations

import pytest

from provider.vault.retry import (
    ANSWER_RESERVE_SECONDS,
    RetryPolicy,
    parse_retry_after,
    retry_fits,
    retryable_status,
)

# retry number, lowest wait (random 0.0), highest wait (random 1.0) for the default policy:
# base 0.25 s doubling, equal jitter (half the step fixed, half random).
DEFAULT_SCHEDULE = [
    pytest.param(1, 0.125, 0.25, id="first-retry"),
    pytest.param(2, 0.25, 0.5, id="second-retry"),
]


@pytest.mark.parametrize(("retry", "low", "high"), DEFAULT_SCHEDULE)
def test_default_schedule_bounds(retry: int, low: float, high: float) -> None:
    """random() 0.0 gives half the step and 1.0 the whole step, for each retry of the default policy."""
    policy = RetryPolicy()
    assert policy.delay(retry, None, lambda: 0.0) == pytest.approx(low)
    assert policy.delay(retry, None, lambda: 1.0) == pytest.approx(high)


def test_default_policy_allows_three_attempts() -> None:
    """The default policy retries twice: the third failure (retry 3) gets no delay."""
    policy = RetryPolicy()
    assert policy.attempts == 3
    assert policy.delay(3, None, lambda: 0.5) is None


def test_jitter_is_linear_between_the_bounds() -> None:
    """random() 0.5 lands halfway between the bounds (0.75 of the step)."""
    assert RetryPolicy(base=1.0).delay(1, None, lambda: 0.5) == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("retry", "low", "high"),
    [
        pytest.param(1, 0.5, 1.0, id="1-step-1"),
        pytest.param(2, 1.0, 2.0, id="2-step-2"),
        pytest.param(3, 2.0, 4.0, id="3-step-4"),
        pytest.param(4, 2.5, 5.0, id="4-capped"),
        pytest.param(9, 2.5, 5.0, id="9-still-capped"),
    ],
)
def test_schedule_doubles_up_to_the_cap(retry: int, low: float, high: float) -> None:
    """Steps double from `base` until `cap`; after that every wait stays within [cap/2, cap]."""
    policy = RetryPolicy(attempts=10, base=1.0, cap=5.0)
    assert policy.delay(retry, None, lambda: 0.0) == pytest.approx(low)
    assert policy.delay(retry, None, lambda: 1.0) == pytest.approx(high)


def test_random_is_asked_once_per_delay() -> None:
    """Each delay draws exactly one random number (so a seeded source gives a reproducible schedule)."""
    draws: list[float] = []

    def recording() -> float:
        draws.append(0.25)
        return 0.25

    policy = RetryPolicy(attempts=4)
    schedule = [policy.delay(retry, None, recording) for retry in (1, 2, 3, 4)]

    assert schedule == pytest.approx([0.15625, 0.3125, 0.625, None])  # type: ignore[list-item]
    assert len(draws) == 3


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        pytest.param(0.0, 0.0, id="zero"),
        pytest.param(1.5, 1.5, id="under-the-cap"),
        pytest.param(30.0, 30.0, id="over-the-cap"),
    ],
)
def test_retry_after_replaces_the_backoff(retry_after: float, expected: float) -> None:
    """A Retry-After from Vault is the wait as asked, whatever the jitter and even above the cap."""
    policy = RetryPolicy()
    assert policy.delay(1, retry_after, lambda: 0.0) == expected
    assert policy.delay(2, retry_after, lambda: 1.0) == expected


def test_retry_after_does_not_add_attempts() -> None:
    """Once the attempts are used up, a Retry-After does not buy another one."""
    assert RetryPolicy().delay(3, 0.1, lambda: 0.0) is None


@pytest.mark.parametrize(
    "attempts",
    [pytest.param(1, id="one-attempt"), pytest.param(2, id="two-attempts"), pytest.param(5, id="five")],
)
def test_attempts_exhausted_gives_none(attempts: int) -> None:
    """Retry number `attempts` and beyond get None: `attempts` counts every try, the first included."""
    policy = RetryPolicy(attempts=attempts)
    for retry in range(1, attempts):
        assert policy.delay(retry, None, lambda: 0.5) is not None
    assert policy.delay(attempts, None, lambda: 0.5) is None
    assert policy.delay(attempts + 1, None, lambda: 0.5) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("2", 2.0, id="integer"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param(" 3 ", 3.0, id="surrounding-spaces"),
        pytest.param("1.5", 1.5, id="fraction"),
        pytest.param("3599", 3599.0, id="just-under-an-hour"),
        pytest.param("3600", None, id="an-hour-or-more-is-ignored"),
        pytest.param("-1", None, id="negative"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="absent"),
        pytest.param("soon", None, id="not-a-number"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", None, id="http-date-ignored"),
        pytest.param("nan", None, id="nan"),
        pytest.param("inf", None, id="infinity"),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    """Only the delay-seconds form below an hour counts; anything else means "no advice"."""
    assert parse_retry_after(header) == expected


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        pytest.param(412, True, id="412-standby-not-caught-up"),
        pytest.param(429, True, id="429-rate-limited"),
        pytest.param(500, True, id="500-internal"),
        pytest.param(502, True, id="502-bad-gateway"),
        pytest.param(503, True, id="503-sealed"),
        pytest.param(504, True, id="504-gateway-timeout"),
        pytest.param(501, False, id="501-not-implemented"),
        pytest.param(200, False, id="200-ok"),
        pytest.param(307, False, id="307-redirect"),
        pytest.param(400, False, id="400-bad-request"),
        pytest.param(401, False, id="401-unauthorized"),
        pytest.param(403, False, id="403-denied"),
        pytest.param(404, False, id="404-not-found"),
        pytest.param(405, False, id="405-method"),
    ],
)
def test_retryable_status(status: int, retryable: bool) -> None:
    """412, 429 and 5xx except 501 are passing failures; every other answer is final."""
    assert retryable_status(status) is retryable


@pytest.mark.parametrize(
    ("wait", "attempt", "remaining", "fits"),
    [
        (0.5, 0.2, 0.81, True),  # 0.5 + 0.2 + the 0.1 s reserve < 0.81
        (0.5, 0.2, 0.79, False),  # the wait and the attempt fit, the answer's reserve does not
        (0.5, 0.0, 0.55, False),  # the wait alone fits
        (0.0, 0.0, ANSWER_RESERVE_SECONDS, False),
    ],
)
def test_a_retry_fits_only_with_room_for_its_attempt_and_answer(
    wait: float, attempt: float, remaining: float, fits: bool
) -> None:
    assert retry_fits(wait, attempt, remaining) is fits
