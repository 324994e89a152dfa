"""Latency statistics and the Vault-wait arithmetic behind the overhead figure (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Interval", "Summary", "overheads", "percentile", "summarize", "union_seconds"]

# (start, end) on the harness's perf_counter clock.
Interval = tuple[float, float]


@dataclass(frozen=True)
class Summary:
    """Milliseconds: p50, p99, mean and max of a sample."""

    p50: float
    p99: float
    mean: float
    max: float


def percentile(values: Sequence[float], fraction: float) -> float:
    """The `fraction` quantile (0..1) with linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of an empty sample")
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(seconds: Sequence[float]) -> Summary | None:
    """Summary in milliseconds of durations in seconds; None for an empty sample."""
    if not seconds:
        return None
    millis = [value * 1000.0 for value in seconds]
    return Summary(
        p50=percentile(millis, 0.50),
        p99=percentile(millis, 0.99),
        mean=sum(millis) / len(millis),
        max=max(millis),
    )


def union_seconds(intervals: Iterable[Interval], window: Interval) -> float:
    """Total time inside `window` covered by at least one interval.

    Concurrent Vault requests of one Mount overlap; counting their union rather than their
    sum keeps a Mount that fetches in parallel from showing a negative overhead.
    """
    start, end = window
    clipped = sorted((max(s, start), min(e, end)) for s, e in intervals if e > start and s < end)
    covered = 0.0
    current_start: float | None = None
    current_end = 0.0
    for s, e in clipped:
        if current_start is None or s > current_end:
            if current_start is not None:
                covered += current_end - current_start
            current_start, current_end = s, e
        else:
            current_end = max(current_end, e)
    if current_start is not None:
        covered += current_end - current_start
    return covered


def overheads(mounts: Sequence[Interval], vault_requests: Sequence[Interval]) -> list[float]:
    """Per Mount: its duration minus the time it spent waiting on Vault (seconds).

    Only meaningful when Mounts do not overlap each other: a Vault request is attributed
    to every Mount whose window it falls in.
    """
    ordered = sorted(vault_requests)
    result = [0.0] * len(mounts)
    first = 0
    for index in sorted(range(len(mounts)), key=lambda i: mounts[i]):
        start, end = mounts[index]
        # Requests are sorted by start; those that ended before this Mount began are behind us.
        while first < len(ordered) and ordered[first][1] <= start:
            first += 1
        relevant = []
        for request in ordered[first:]:
            if request[0] >= end:
                break
            relevant.append(request)
        result[index] = max(0.0, (end - start) - union_seconds(relevant, (start, end)))
    return result
