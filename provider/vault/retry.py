"""When to try a Vault request again, and how long to wait first. Pure: no clock, no sleep.

One layer owns retries: this one, inside the Mount's deadline (the HTTP adapters
never retry on their own). Retried: no answer at all (connection refused or reset),
429 (waiting as long as Retry-After says), 412, and 5xx except 501. Never retried:
TLS failures, unknown hosts, timeouts (the deadline is spent), and every other answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ANSWER_RESERVE_SECONDS", "RetryPolicy", "parse_retry_after", "retry_fits", "retryable_status"]

# Kept back after the last retry for the error to reach the caller, whose deadline began
# before ours (the request's transit) and ends when the answer arrives, not when it is sent.
ANSWER_RESERVE_SECONDS = 0.1


def retryable_status(status: int) -> bool:
    return status in (412, 429) or (status >= 500 and status != 501)


def retry_fits(wait: float, attempt_seconds: float, remaining: float) -> bool:
    """Whether a retry after `wait` seconds, and its answer, fit in the `remaining` ones.

    The retry may take as long as the attempt before it did. Without that room the caller's
    deadline passes first, and the pod's event says "deadline exceeded" instead of what
    each Vault node answered.
    """
    return wait + attempt_seconds + ANSWER_RESERVE_SECONDS < remaining


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delay-seconds form only; HTTP dates are ignored)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if 0 <= seconds < 3600 else None


@dataclass(frozen=True)
class RetryPolicy:
    """Up to `attempts` tries; waits grow from `base` by doubling to `cap`, with equal jitter."""

    attempts: int = 3
    base: float = 0.25
    cap: float = 2.0

    def delay(self, retry: int, retry_after: float | None, random: Callable[[], float]) -> float | None:
        """Seconds to wait before retry number `retry` (1-based), or None when no retry is left."""
        if retry >= self.attempts:
            return None
        if retry_after is not None:
            return retry_after
        step: float = self.base * (2.0 ** (retry - 1))
        ceiling = min(self.cap, step)
        # Equal jitter: never less than half the step, so a herd spreads but still backs off.
        return ceiling / 2 + random() * ceiling / 2
