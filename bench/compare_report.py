"""The side-by-side table of `--compare-cmd`: both providers' figures and the ratio ours/theirs (pure).

"ours" is the provider of `--provider-cmd`, "theirs" the one of `--compare-cmd`. A ratio
below 1 means the first provider needs less (time, CPU, memory) than the second; for
Mounts/s, where more is better, the ratio is theirs/ours so that below 1 still means "ahead".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.compare import GRPCIO_CLIENT, Pass, SideFigures
from bench.measure import ScenarioResult
from bench.stats import Summary

__all__ = ["Comparison", "format_comparison"]

Row = tuple[str, float | None, float | None]


@dataclass
class Comparison:
    """The second provider's command and figures, filled in as the run goes."""

    command: str
    runtime: tuple[str, str]
    ours_rss_start_kib: int
    theirs_rss_start_kib: int
    idle_cpu_ms_per_s: tuple[float, float] | None = None
    passes: list[Pass] = field(default_factory=list)
    scenarios: list[ScenarioResult] = field(default_factory=list)  # the second provider's

    def rows(self, ours: list[ScenarioResult]) -> list[Row]:
        """(figure, ours, theirs) for every figure both providers have."""
        rows: list[Row] = [
            ("RSS at start, MiB", self.ours_rss_start_kib / 1024, self.theirs_rss_start_kib / 1024)
        ]
        if self.idle_cpu_ms_per_s is not None:
            rows.append(("idle CPU ms/s", *self.idle_cpu_ms_per_s))
        for done in self.passes:
            a, b = done.sides
            where = f"warm poll, {done.spacing_ms:g} ms apart"
            if done.client != GRPCIO_CLIENT:
                where += f" ({done.client})"
            rows += [
                (f"{where}: p50 ms", _p50(a.latency), _p50(b.latency)),
                (f"{where}: p99 ms", _p99(a.latency), _p99(b.latency)),
                (f"{where}: overhead p50 ms", _p50(a.overhead), _p50(b.overhead)),
                (f"{where}: CPU ms/poll", a.cpu_ms_per_mount, b.cpu_ms_per_mount),
                (f"{where}: RSS after, MiB", a.rss_kib / 1024, b.rss_kib / 1024),
            ]
            if done.floor is not None and a.latency is not None and b.latency is not None:
                floor = done.floor.total.p50
                above = (a.latency.p50 - floor, b.latency.p50 - floor)
                rows.append((f"{where}: p50 above the floor, ms", *above))
        theirs = {r.key: r for r in self.scenarios if r.skipped is None}
        for mine in ours:
            other = theirs.get(mine.key)
            if other is None or mine.skipped is not None:
                continue
            rows += _scenario_rows(mine, other)
        return rows

    def to_json(self, ours: list[ScenarioResult]) -> dict[str, Any]:
        return {
            "command": self.command,
            "runtime": list(self.runtime),
            "passes": [asdict(done) for done in self.passes],
            "rows": [
                {"figure": name, "ours": mine, "theirs": other, "ratio": _ratio(name, mine, other)}
                for name, mine, other in self.rows(ours)
            ],
        }


def _scenario_rows(mine: ScenarioResult, other: ScenarioResult) -> list[Row]:
    figures: list[tuple[str, Callable[[ScenarioResult], float | None]]] = [
        ("p50 ms", lambda r: _p50(r.latency)),
        ("overhead p50 ms", lambda r: _p50(r.overhead)),
        ("CPU ms/Mount", lambda r: r.per_mount(1) * r.cpu_seconds * 1000),
        ("RSS after, MiB", lambda r: r.rss_kib / 1024),
        ("Mounts/s", lambda r: r.mounts_per_second),
    ]
    if mine.key == "c":
        figures.append(("completion s", lambda r: float(r.extra.get("storm_completion_s", 0.0))))
    return [(f"scenario {mine.key}: {name}", value(mine), value(other)) for name, value in figures]


def _p50(summary: Summary | None) -> float | None:
    return None if summary is None else summary.p50


def _p99(summary: Summary | None) -> float | None:
    return None if summary is None else summary.p99


def _ratio(name: str, mine: float | None, other: float | None) -> float | None:
    if mine is None or other is None:
        return None
    if name.endswith("Mounts/s"):
        mine, other = other, mine
    return round(mine / other, 3) if other else None


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _errors(sides: tuple[SideFigures, SideFigures]) -> list[str]:
    return [
        f"    {side.label}: {side.errors} of {side.mounts} polls failed, e.g. {side.error_example}"
        for side in sides
        if side.errors
    ]


def _floor_line(done: Pass) -> str:
    """The floor of a pass, and the best p50 ratio any provider could have had against theirs."""
    floor = done.floor
    assert floor is not None
    theirs = done.sides[1].latency
    best = f"; the best p50 ratio possible: {floor.total.p50 / theirs.p50:.2f}" if theirs else ""
    return (
        f"floor, {done.spacing_ms:g} ms apart: p50 {floor.total.p50:.2f} ms (a Version call, p50 "
        f"{floor.version.p50:.2f} ms, then the poll's reads sent at once straight to OpenBao, unparsed, "
        f"p50 {floor.reads.p50:.2f} ms){best}"
    )


def format_comparison(comparison: Comparison, ours: list[ScenarioResult]) -> str:
    """The side-by-side table, ratio = ours / theirs (Mounts/s: theirs / ours)."""
    name, version = comparison.runtime
    rows = comparison.rows(ours)
    width = max(len(row[0]) for row in rows)
    lines = [
        "",
        f"side by side with: {name or '?'} {version or ''}".rstrip(),
        f"command:  {comparison.command}",
        "warm polls interleaved A B B A, each provider with its own pod, proxy and volume",
        "",
        f"{'':<{width}}  {'ours':>9}  {'theirs':>9}  {'ratio':>6}",
    ]
    for figure, mine, other in rows:
        ratio = _cell(_ratio(figure, mine, other))
        lines.append(f"{figure:<{width}}  {_cell(mine):>9}  {_cell(other):>9}  {ratio:>6}")
    for done in comparison.passes:
        lines += _errors(done.sides)
    lines += [_floor_line(done) for done in comparison.passes if done.floor is not None]
    for result in comparison.scenarios:
        lines += [f"    theirs, scenario {result.key}: error: {example}" for example in result.error_examples]
    lines.append("ratio: ours / theirs; below 1 is ahead (Mounts/s: theirs / ours)")
    return "\n".join(lines)
