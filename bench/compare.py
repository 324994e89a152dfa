"""Side by side (`--compare-cmd`): warm polls sent to two providers interleaved, A B B A.

Both providers run in the same run, against the same OpenBao, each through its own timing
proxy (so each one's overhead is computed from its own Vault requests only) and each with
its own pod and volume. A pass sends `polls` rounds; round i polls the first provider then
the second when i is even, the other way round when it is odd, so neither always follows
the other (ABBA cancels a drift of the machine's load and an order effect). Between any two
polls the pass waits `spacing` seconds: HashiCorp's provider GETs its HMAC Secret through
client-go's limiter (5 requests/s, burst 10) on every Mount, so back-to-back polls measure
that limiter, and polls spaced 250 ms apart measure the provider.

After a pass by the harness's client, `floor_pass` sends as many floor polls, spaced alike:
what no provider's poll can beat on this machine (`floor`). It runs on its own so that its
gRPC calls count in neither provider's CPU.

A pass's polls are sent by the harness's grpcio client (`interleaved_pass`) or by the
driver's own Go client (`go_interleaved_pass`, see `go_timer`); the figures are made alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.floor import FloorPoll, FloorTimes
from bench.go_timer import GoTimer
from bench.procfs import ProcessSample
from bench.provider_process import ProviderProcess
from bench.proxy import TimingProxy
from bench.stats import Summary, overheads, summarize
from bench.workload import Driver, MountSample, Pod

__all__ = [
    "GO_CLIENT",
    "GRPCIO_CLIENT",
    "Floor",
    "Pass",
    "Side",
    "SideFigures",
    "floor_pass",
    "go_interleaved_pass",
    "idle_cpu",
    "interleaved_pass",
]

_SETTLE_SECONDS = 0.2
# Which client sent a pass's polls.
GRPCIO_CLIENT = "grpcio"
GO_CLIENT = "Go driver client"


@dataclass
class Side:
    """One provider of the pair, its driver channel, its proxy and the pod it is polled for."""

    label: str
    provider: ProviderProcess
    driver: Driver
    proxy: TimingProxy | None
    pod: Pod


@dataclass(frozen=True)
class SideFigures:
    """One provider's figures in one pass."""

    label: str
    mounts: int
    errors: int
    latency: Summary | None
    overhead: Summary | None
    cpu_ms_per_mount: float
    rss_kib: int
    error_example: str | None


@dataclass(frozen=True)
class Floor:
    """A floor pass: its polls' times, whole and in parts."""

    total: Summary
    version: Summary
    reads: Summary


@dataclass(frozen=True)
class Pass:
    """One interleaved pass: the spacing between polls, the client that sent them, both providers' figures."""

    spacing_ms: float
    polls: int
    sides: tuple[SideFigures, SideFigures]
    client: str = GRPCIO_CLIENT
    floor: Floor | None = None  # the floor pass after it (`floor_pass`), if one ran


def idle_cpu(sides: tuple[Side, Side], seconds: float) -> tuple[float, float]:
    """Each provider's CPU milliseconds per second while nothing is asked of it (after its start).

    Rotation polls come minutes apart (the driver's default is 2 min), so what a provider
    burns between them counts on every node as much as what a poll costs.
    """
    before = [side.provider.sample() for side in sides]
    time.sleep(seconds)
    after = [side.provider.sample() for side in sides]
    a, b = (
        (end.cpu_seconds - start.cpu_seconds) * 1000.0 / seconds
        for start, end in zip(before, after, strict=True)
    )
    return a, b


def interleaved_pass(sides: tuple[Side, Side], polls: int, spacing_seconds: float, warmup: int) -> Pass:
    """Warm both up, then `polls` ABBA rounds with `spacing_seconds` between consecutive polls."""
    for side in sides:
        for _ in range(warmup):
            side.driver.mount(side.pod, write=True)
            time.sleep(spacing_seconds)
    before = _start_timing(sides)
    samples: tuple[list[MountSample], list[MountSample]] = ([], [])
    for round_index in range(polls):
        order = (0, 1) if round_index % 2 == 0 else (1, 0)
        for index in order:
            samples[index].append(sides[index].driver.mount(sides[index].pod, write=True))
            time.sleep(spacing_seconds)
    return _pass(sides, samples, before, spacing_seconds, polls, GRPCIO_CLIENT)


def floor_pass(floor: FloorPoll, polls: int, spacing_seconds: float, warmup: int) -> Floor:
    """`polls` floor polls (after `warmup` untimed ones), `spacing_seconds` apart like a pass's polls."""
    for _ in range(warmup):
        floor.poll()
        time.sleep(spacing_seconds)
    taken: list[FloorTimes] = []
    for _ in range(polls):
        taken.append(floor.poll())
        time.sleep(spacing_seconds)
    return Floor(
        _summary([times.total for times in taken]),
        _summary([times.version for times in taken]),
        _summary([times.reads for times in taken]),
    )


def _summary(seconds: list[float]) -> Summary:
    summary = summarize(seconds)
    if summary is None:
        raise ValueError("a floor pass needs at least one poll")
    return summary


def go_interleaved_pass(
    sides: tuple[Side, Side], timer: GoTimer, polls: int, spacing_seconds: float, warmup: int
) -> Pass:
    """As `interleaved_pass`, the polls (warm-up included) sent by the driver's Go client."""
    before: list[ProcessSample] = []
    samples = timer.interleaved(
        [side.provider.socket_path for side in sides],
        [side.pod for side in sides],
        polls,
        spacing_seconds,
        warmup,
        lambda: before.extend(_start_timing(sides)),
    )
    return _pass(sides, samples, before, spacing_seconds, polls, GO_CLIENT)


def _start_timing(sides: tuple[Side, Side]) -> list[ProcessSample]:
    """After the warm-up: let it settle, forget its proxy records, and sample each provider's CPU."""
    time.sleep(_SETTLE_SECONDS)
    for side in sides:
        if side.proxy is not None:
            side.proxy.drain()
    return [side.provider.sample() for side in sides]


def _pass(
    sides: tuple[Side, Side],
    samples: tuple[list[MountSample], list[MountSample]],
    before: list[ProcessSample],
    spacing_seconds: float,
    polls: int,
    client: str,
) -> Pass:
    """The pass's figures, from its samples and each provider's CPU sampled before it and now."""
    after = [side.provider.sample() for side in sides]
    figures = tuple(
        _figures(side, taken, start, end)
        for side, taken, start, end in zip(sides, samples, before, after, strict=True)
    )
    return Pass(
        spacing_ms=spacing_seconds * 1000.0, polls=polls, sides=(figures[0], figures[1]), client=client
    )


def _figures(side: Side, samples: list[MountSample], start: ProcessSample, end: ProcessSample) -> SideFigures:
    side.provider.check_alive()
    ok = [s for s in samples if s.error is None]
    overhead = None
    if side.proxy is not None:
        records = side.proxy.drain()
        overhead = summarize(overheads([(s.start, s.end) for s in ok], [(r.start, r.end) for r in records]))
    failed = [s.error for s in samples if s.error is not None]
    cpu = end.cpu_seconds - start.cpu_seconds
    return SideFigures(
        label=side.label,
        mounts=len(samples),
        errors=len(failed),
        latency=summarize([s.seconds for s in ok]),
        overhead=overhead,
        cpu_ms_per_mount=cpu * 1000.0 / len(samples) if samples else 0.0,
        rss_kib=end.rss_kib,
        error_example=failed[0] if failed else None,
    )
