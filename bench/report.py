"""The report: readable tables for stdout and a JSON document with every figure (pure)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.audit import KINDS, NEW_KINDS
from bench.measure import ScenarioResult
from bench.stats import Summary

__all__ = ["Report", "format_report", "to_json", "write_json"]

_OTHER_SHOWN = 4

DEFINITIONS = {
    "latency": "client-side Mount round trip over the unix socket (gRPC call and the driver's checks)",
    "overhead": (
        "per sequential Mount: its latency minus the union of the Vault requests' durations inside it, "
        "as timed by the proxy between the provider and OpenBao (the proxy's own cost counts as Vault time)"
    ),
    "vault_requests": (
        "audit-log request entries in the scenario's window by kind: login (auth/*/login), read, "
        "issue (*/creds/*, pki issue/sign), renew (sys/leases/renew), lookup (sys/leases/lookup), "
        "token (auth/token/* lookups and renewals), revoke, other"
    ),
    "new_objects": (
        "from audit-log responses: tokens and leases whose id first appears in the window (renewals "
        "repeat an id and are not new); certs = successful PKI issue/sign responses (no lease)"
    ),
    "cpu_seconds": "user+system CPU of the provider's process tree during the measured window",
    "rss": "VmRSS of the provider's process tree",
    "mounts_per_second": "Mounts / window wall time (c: from the release of the storm to its last Mount)",
}


@dataclass
class Report:
    """One run: the provider, how it was driven, and the scenario results."""

    command: str
    runtime: tuple[str, str]
    proxy: bool
    rss_start_kib: int
    version_rtt: Summary | None
    scenarios: list[ScenarioResult]
    options: dict[str, Any]
    host: dict[str, Any]
    started_at: str
    duration_seconds: float = 0.0
    provider_exit_code: int | None = None
    aborted: str | None = None
    notes: list[str] = field(default_factory=list)
    comparison: dict[str, Any] | None = None  # `--compare-cmd`: see bench.compare_report


def _ms(summary: Summary | None, attribute: str) -> str:
    return "-" if summary is None else f"{getattr(summary, attribute):.2f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.rjust(width) if i else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def format_report(report: Report) -> str:
    """The tables printed at the end of a run."""
    name, version = report.runtime
    lines = [
        "",
        f"provider: {name or '?'} {version or ''}".rstrip(),
        f"command:  {report.command}",
        f"checkout: {report.host.get('checkout', 'unknown')} (what {{python}} -m provider runs); "
        f"load average (1 min) before the run: {report.host.get('load_average_1m_before', '?')}",
        f"vault:    {'through the timing proxy' if report.proxy else 'direct (--no-proxy: no overhead)'}",
        f"gRPC Version round trip: p50 {_ms(report.version_rtt, 'p50')} ms, "
        f"p99 {_ms(report.version_rtt, 'p99')} ms (the floor under every Mount latency)",
        "",
    ]
    done = [r for r in report.scenarios if r.skipped is None]
    mounts = [
        [
            f"{r.key}",
            str(r.mounts),
            str(r.errors),
            _ms(r.latency, "p50"),
            _ms(r.latency, "p99"),
            f"{r.mounts_per_second:.1f}",
            _ms(r.overhead, "p50"),
            _ms(r.overhead, "p99"),
            f"{r.cpu_seconds:.2f}",
            f"{r.per_mount(1) * r.cpu_seconds * 1000:.2f}",
            f"{r.rss_kib / 1024:.1f}",
        ]
        for r in done
    ]
    header = [
        "",
        "Mounts",
        "errors",
        "p50 ms",
        "p99 ms",
        "Mounts/s",
        "ovh p50",
        "ovh p99",
        "CPU s",
        "CPU ms/M",
        "RSS MiB",
    ]
    lines += ["Mount latency and provider cost (ovh = provider overhead per Mount, ms)"]
    lines += _table(header, mounts)
    lines += ["", "Vault requests per Mount (audit log), and new objects per Mount"]
    header = ["", *KINDS, "total", "|", *(f"new {kind}" for kind in NEW_KINDS), "vault err"]
    rows = []
    for r in done:
        row = [r.key, *(f"{r.per_mount(r.vault_requests[kind]):.2f}" for kind in KINDS)]
        row += [f"{r.per_mount(sum(r.vault_requests.values())):.2f}", "|"]
        row += [f"{r.per_mount(r.new_objects[kind]):.2f}" for kind in NEW_KINDS]
        row.append(str(r.vault_errors))
        rows.append(row)
    lines += _table(header, rows)
    lines += [
        "",
        f"provider RSS: start {report.rss_start_kib / 1024:.1f} MiB"
        + "".join(f", after {r.key} {r.rss_kib / 1024:.1f} MiB" for r in done),
    ]
    lines += [""]
    for r in report.scenarios:
        lines.append(f"({r.key}) {r.title}")
        if r.skipped:
            lines.append(f"    skipped: {r.skipped}")
            continue
        extra = [f"{key}={value}" for key, value in r.extra.items()]
        extra.append(f"window {r.wall_seconds:.2f} s")
        if r.kube_api_calls is not None:
            extra.append(f"kube API calls/Mount {r.per_mount(r.kube_api_calls):.2f}")
        lines.append("    " + ", ".join(extra))
        lines += [f"    error: {example}" for example in r.error_examples]
        if r.other_requests:
            other = ", ".join(f"{what} x{n}" for what, n in r.other_requests.most_common(_OTHER_SHOWN))
            lines.append(f"    other Vault requests: {other}")
    if report.aborted:
        lines += ["", f"ABORTED: {report.aborted}"]
    lines += [f"note: {note}" for note in report.notes]
    lines += [
        "",
        f"provider exit code after SIGTERM: {report.provider_exit_code}",
        f"run took {report.duration_seconds:.0f} s",
    ]
    return "\n".join(lines)


def to_json(report: Report) -> dict[str, Any]:
    """Every figure, with totals and per-Mount values, and the definitions used."""
    scenarios = []
    for r in report.scenarios:
        entry: dict[str, Any] = {"key": r.key, "title": r.title, "skipped": r.skipped}
        if r.skipped is None:
            entry.update(
                mounts=r.mounts,
                errors=r.errors,
                error_examples=r.error_examples,
                wall_seconds=round(r.wall_seconds, 4),
                mounts_per_second=round(r.mounts_per_second, 2),
                latency_ms=_summary(r.latency),
                overhead_ms=_summary(r.overhead),
                vault_requests={kind: r.vault_requests[kind] for kind in KINDS},
                vault_requests_per_mount={
                    kind: round(r.per_mount(r.vault_requests[kind]), 4) for kind in KINDS
                },
                other_vault_requests=dict(r.other_requests.most_common()),
                vault_requests_total_per_mount=round(r.per_mount(sum(r.vault_requests.values())), 4),
                new_objects={kind: r.new_objects[kind] for kind in NEW_KINDS},
                new_objects_per_mount={
                    kind: round(r.per_mount(r.new_objects[kind]), 4) for kind in NEW_KINDS
                },
                vault_error_responses=r.vault_errors,
                cpu_seconds=round(r.cpu_seconds, 3),
                cpu_ms_per_mount=round(r.per_mount(1) * r.cpu_seconds * 1000, 3),
                rss_kib_after=r.rss_kib,
                kube_api_calls=r.kube_api_calls,
                extra=r.extra,
            )
        scenarios.append(entry)
    return {
        "started_at": report.started_at,
        "duration_seconds": round(report.duration_seconds, 1),
        "provider": {
            "command": report.command,
            "runtime_name": report.runtime[0],
            "runtime_version": report.runtime[1],
            "exit_code_after_sigterm": report.provider_exit_code,
        },
        "through_proxy": report.proxy,
        "version_round_trip_ms": _summary(report.version_rtt),
        "rss_kib": {
            "start": report.rss_start_kib,
            **{f"after_{r.key}": r.rss_kib for r in report.scenarios if r.skipped is None},
        },
        "scenarios": scenarios,
        "options": report.options,
        "host": report.host,
        "aborted": report.aborted,
        "notes": report.notes,
        "comparison": report.comparison,
        "definitions": DEFINITIONS,
    }


def _summary(summary: Summary | None) -> dict[str, float] | None:
    return None if summary is None else {key: round(value, 3) for key, value in asdict(summary).items()}


def write_json(path: str, report: Report) -> Path:
    target = Path(path)
    target.write_text(json.dumps(to_json(report), indent=2) + "\n", encoding="utf-8")
    return target
