"""The scale benchmark's figures per step, its table and its JSON (pure).

A step is one (mode, pods per node) pair. Its Vault figures come from OpenBao's audit
log: per minute over the measured window (after the first Mounts and one poll interval
of warm-up), plus the logins and dynamic-secret issues of the whole step (first Mounts
included), and the database leases OpenBao holds when the window ends.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.audit import AuditCounts
from bench.stats import Summary, percentile, summarize

__all__ = ["LEGEND", "StepResult", "format_table", "step_result", "write_json"]

LEGEND = (
    "Vault figures from OpenBao's audit log (request entries), per minute over the window; "
    "lease = sys/leases/lookup + renew; issue = database creds (a new dynamic secret); "
    "logins and issues (step) include the first Mounts and the warm-up; leases end = database leases "
    "in OpenBao after the window (a LIST as root); lag = how late a poll started after it was due; "
    "RSS/CPU of each provider's process tree (mean per node), bao CPU = OpenBao's, in the window"
)
_ERROR_EXAMPLES = 3


@dataclass(frozen=True)
class StepWindow:
    """The raw readings of one step, gathered by the runner."""

    window_seconds: float
    latencies: list[float]  # seconds, successful window Mounts
    lags: list[float]
    errors: list[str]  # one per failed window Mount
    first_errors: list[str]  # one per failed first Mount
    first_mounts: int
    window: AuditCounts
    before_window: AuditCounts  # the first Mounts and the warm-up
    leases_end: int
    rss_kib: list[int]  # per node, at the window's end
    cpu_seconds: list[float]  # per node, in the window
    bao_cpu_seconds: float | None


@dataclass
class StepResult:
    """One row of the table."""

    mode: str
    nodes: int
    pods_per_node: int
    workloads: int
    window_seconds: float
    mounts: int
    failures: int
    latency_ms: Summary | None
    lag_p99_s: float | None
    requests: dict[str, int]  # by kind, in the window
    requests_per_minute: dict[str, float]
    vault_errors: int
    step_logins: int
    step_issues: int
    first_mounts: int
    first_failures: int
    leases_end: int
    rss_mib_per_node: float
    cpu_percent_per_node: float
    bao_cpu_percent: float | None
    error_examples: list[str] = field(default_factory=list)
    other_requests: dict[str, int] = field(default_factory=dict)


def step_result(mode: str, nodes: int, pods_per_node: int, workloads: int, raw: StepWindow) -> StepResult:
    """The figures of one step from its readings."""
    minutes = raw.window_seconds / 60.0
    per_minute = {kind: count / minutes for kind, count in raw.window.requests.items()}
    per_minute["total"] = raw.window.total_requests / minutes
    node_count = max(1, len(raw.rss_kib))
    return StepResult(
        mode=mode,
        nodes=nodes,
        pods_per_node=pods_per_node,
        workloads=workloads,
        window_seconds=raw.window_seconds,
        mounts=len(raw.latencies) + len(raw.errors),
        failures=len(raw.errors),
        latency_ms=summarize(raw.latencies),
        lag_p99_s=percentile(raw.lags, 0.99) if raw.lags else None,
        requests=dict(raw.window.requests),
        requests_per_minute=per_minute,
        vault_errors=raw.window.errors,
        step_logins=raw.before_window.requests["login"] + raw.window.requests["login"],
        step_issues=raw.before_window.requests["issue"] + raw.window.requests["issue"],
        first_mounts=raw.first_mounts,
        first_failures=len(raw.first_errors),
        leases_end=raw.leases_end,
        rss_mib_per_node=sum(raw.rss_kib) / node_count / 1024.0,
        cpu_percent_per_node=sum(raw.cpu_seconds) / node_count / raw.window_seconds * 100.0,
        bao_cpu_percent=None
        if raw.bao_cpu_seconds is None
        else raw.bao_cpu_seconds / raw.window_seconds * 100,
        error_examples=list(dict.fromkeys([*raw.first_errors, *raw.errors]))[:_ERROR_EXAMPLES],
        other_requests=dict(raw.window.other.most_common(4)),
    )


_HEADER = [
    "mode",
    "nodesxpods",
    "Mounts",
    "fail",
    "p50 ms",
    "p99 ms",
    "lag p99 s",
    "req/min",
    "req/Mount",
    "login/min",
    "read/min",
    "lease/min",
    "issue/min",
    "other/min",
    "logins (step)",
    "issues (step)",
    "leases end",
    "RSS MiB/node",
    "CPU %/node",
    "bao CPU %",
]


def _row(r: StepResult) -> list[str]:
    rate = r.requests_per_minute
    counted = ("login", "read", "lookup", "renew", "issue")
    other = rate["total"] - sum(rate.get(kind, 0.0) for kind in counted)
    return [
        r.mode,
        f"{r.nodes}x{r.pods_per_node}",
        str(r.mounts),
        str(r.failures + r.first_failures),
        "-" if r.latency_ms is None else f"{r.latency_ms.p50:.1f}",
        "-" if r.latency_ms is None else f"{r.latency_ms.p99:.1f}",
        "-" if r.lag_p99_s is None else f"{r.lag_p99_s:.2f}",
        f"{rate['total']:.0f}",
        "-" if not r.mounts else f"{sum(r.requests.values()) / r.mounts:.2f}",
        f"{rate.get('login', 0.0):.0f}",
        f"{rate.get('read', 0.0):.0f}",
        f"{rate.get('lookup', 0.0) + rate.get('renew', 0.0):.0f}",
        f"{rate.get('issue', 0.0):.0f}",
        f"{other:.0f}",
        str(r.step_logins),
        str(r.step_issues),
        str(r.leases_end),
        f"{r.rss_mib_per_node:.1f}",
        f"{r.cpu_percent_per_node:.1f}",
        "-" if r.bao_cpu_percent is None else f"{r.bao_cpu_percent:.1f}",
    ]


def format_table(results: list[StepResult]) -> str:
    """A markdown table, one row per step, and the failures and odd requests under it."""
    lines = ["| " + " | ".join(_HEADER) + " |", "|" + "|".join("---" for _ in _HEADER) + "|"]
    lines += ["| " + " | ".join(_row(r)) + " |" for r in results]
    lines += ["", LEGEND]
    for r in results:
        where = f"{r.mode} {r.nodes}x{r.pods_per_node}"
        if r.first_failures:
            lines.append(f"{where}: {r.first_failures} of {r.first_mounts} first Mounts failed")
        lines += [f"{where}: error: {example}" for example in r.error_examples]
        if r.vault_errors:
            lines.append(f"{where}: {r.vault_errors} Vault error responses in the window")
        if r.other_requests:
            other = ", ".join(f"{what} x{n}" for what, n in r.other_requests.items())
            lines.append(f"{where}: other Vault requests: {other}")
    return "\n".join(lines)


def write_json(path: str, results: list[StepResult], meta: dict[str, Any]) -> Path:
    """Every step's figures and the run's options, for comparing runs."""
    target = Path(path)
    document = {**meta, "legend": LEGEND, "steps": [asdict(r) for r in results]}
    target.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    return target
