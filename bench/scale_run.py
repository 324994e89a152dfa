"""One scale run: start OpenBao and PostgreSQL once, then for every (mode, pods) step start the
nodes afresh, Mount every pod once, poll, measure a window, and stop the nodes.

The only place where the scale benchmark's pieces are composed. The backends live on the
run's ExitStack and each step's provider processes on the step's own, so an exception,
Ctrl-C or SIGTERM stops everything, providers first.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import hvac.exceptions

from bench import layout
from bench.audit import AuditLog
from bench.backends import Backends, count_database_leases, start_backends
from bench.procfs import sample_tree
from bench.provider_process import ProviderFailed
from bench.scale_fleet import Poller, make_pods, mount_once, start_nodes
from bench.scale_options import ScaleOptions, mode_parameters
from bench.scale_report import StepResult, StepWindow, format_table, step_result, write_json
from bench.workload import PodFactory

__all__ = ["run"]

REPO_ROOT = Path(__file__).resolve().parents[1]
# The audit device writes before it answers; give a background write a moment to land.
_SETTLE_SECONDS = 0.2


def say(text: str) -> None:
    print(f"==> {text}", file=sys.stderr, flush=True)


@dataclass
class _Run:
    """What every step needs."""

    options: ScaleOptions
    backends: Backends
    audit: AuditLog
    pods: PodFactory
    values: dict[str, str]  # placeholders shared by every node
    env: dict[str, str]
    extra_env: dict[str, str]  # --provider-env, placeholders filled in per node
    scratch: Path
    objects: list[dict[str, Any]]


def run(options: ScaleOptions, provider_env: dict[str, str]) -> int:
    """Run every step and print the table; 1 when a provider failed (the steps done are still shown)."""
    began = time.monotonic()
    load_before = os.getloadavg()[0]
    scratch = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    results: list[StepResult] = []
    aborted = None
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, scratch, ignore_errors=True)
        say("starting OpenBao (file audit device), the TokenReview stand-in and PostgreSQL")
        backends = start_backends(stack, database=True, storm_objects=0)
        objects = layout.scale_objects() if backends.postgres is not None else layout.static_objects()
        values = {
            "python": options.python,
            "vault_addr": backends.bao.address,
            "key_file": str(_write_key(scratch / "hmac.key")),
        }
        context = _Run(
            options,
            backends,
            AuditLog(backends.audit_log),
            PodFactory(backends.issuer),
            values,
            _base_env(),
            provider_env,
            scratch,
            objects,
        )
        # Pods-major, so the modes of one size sit next to each other in the table.
        steps = [(mode, pods) for pods in options.pods for mode in options.modes]
        for number, (mode, pods) in enumerate(steps):
            say(f"step {number + 1}/{len(steps)}: {mode}, {options.nodes} nodes x {pods} pods")
            try:
                result = _step(context, mode, pods, number)
            except ProviderFailed as exc:
                aborted = f"{mode} {options.nodes}x{pods}: {exc}"
                break
            results.append(result)
            rate = result.requests_per_minute["total"]
            say(f"  {result.mounts} Mounts, {result.failures} failed, {rate:.0f} Vault requests/min")
        print(_heading(options, backends, load_before), flush=True)
        print(format_table(results), flush=True)
        if aborted:
            print(f"\nABORTED: {aborted}", flush=True)
        print(f"\nrun took {time.monotonic() - began:.0f} s", flush=True)
        if options.json_path:
            meta = {"options": asdict(options), "cpus": os.cpu_count(), "load_average_1m_before": load_before}
            say(f"JSON written to {write_json(options.json_path, results, meta)}")
    return 1 if aborted else 0


def _step(run_: _Run, mode: str, per_node: int, number: int) -> StepResult:
    options = run_.options
    _revoke_database_leases(run_.backends.root)
    directory = run_.scratch / f"step-{number}"
    directory.mkdir()
    with contextlib.ExitStack() as step_stack:
        step_stack.callback(_keep_logs, options.provider_log_dir, directory)
        nodes = start_nodes(
            step_stack, options.nodes, options.provider_cmd, run_.values, run_.env, run_.extra_env, directory
        )
        parameters = mode_parameters(mode, options.refresh_interval)
        make_pods(run_.pods, nodes, per_node, options.workloads, number, parameters, run_.objects)
        run_.audit.take()  # the lease revocations and start-up belong to no step
        first = mount_once(nodes, options.concurrency)
        poller = Poller(nodes, options.poll_interval, options.concurrency)
        step_stack.callback(poller.stop)
        poller.start(time.perf_counter())
        time.sleep(options.poll_interval)  # warm-up: every pod polled once
        before_window = run_.audit.take()
        start, cpu_start = time.perf_counter(), [node.sample().cpu_seconds for node in nodes]
        bao_start = _bao_cpu(run_.backends)
        time.sleep(options.duration)
        # Stopped first, so the window ends after its last Mount and no Mount outside it is counted.
        poller.stop()
        end, end_samples = time.perf_counter(), [node.sample() for node in nodes]
        bao_end = _bao_cpu(run_.backends)
        for node in nodes:
            node.provider.check_alive()
        time.sleep(_SETTLE_SECONDS)
        window = run_.audit.take()
        leases = count_database_leases(run_.backends.root)
    measured = [s for s in poller.samples if s.mount.start >= start]
    raw = StepWindow(
        window_seconds=end - start,
        latencies=[s.mount.seconds for s in measured if s.mount.error is None],
        lags=[s.lag for s in measured],
        errors=[s.mount.error for s in measured if s.mount.error is not None],
        first_errors=[s.mount.error for s in first if s.mount.error is not None],
        first_mounts=len(first),
        window=window,
        before_window=before_window,
        leases_end=leases,
        rss_kib=[sample.rss_kib for sample in end_samples],
        cpu_seconds=[
            after.cpu_seconds - before for after, before in zip(end_samples, cpu_start, strict=True)
        ],
        bao_cpu_seconds=None if bao_start is None or bao_end is None else bao_end - bao_start,
    )
    return step_result(mode, options.nodes, per_node, options.workloads, raw)


def _revoke_database_leases(root: Any) -> None:
    """Revoke what an earlier step left, so `leases end` counts this step's alone."""
    with contextlib.suppress(hvac.exceptions.InvalidPath):
        root.adapter.put(f"/v1/sys/leases/revoke-prefix/{layout.DB_MOUNT}/creds/{layout.DB_ROLE}")


def _bao_cpu(backends: Backends) -> float | None:
    pid = backends.bao.pid
    return None if pid is None else sample_tree(pid).cpu_seconds


def _keep_logs(target: str | None, directory: Path) -> None:
    if target is None:
        return
    destination = Path(target) / directory.name
    destination.mkdir(parents=True, exist_ok=True)
    for log in directory.glob("*.log"):
        shutil.copy2(log, destination / log.name)


def _write_key(path: Path) -> Path:
    """32 random bytes, owner-only, for `-hmac-key-file`: one key for every node, as one Secret."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_bytes(32))
    return path


def _base_env() -> dict[str, str]:
    """This environment without VAULT_*/BAO_*, with the repository importable."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("VAULT_", "BAO_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    return env


def _heading(options: ScaleOptions, backends: Backends, load_before: float) -> str:
    database = (
        "one database credential per pod"
        if backends.postgres is not None
        else f"NO database credential (PostgreSQL unavailable: {backends.why_no_database})"
    )
    lines = [
        "",
        f"provider: {options.provider_cmd}",
        f"{options.nodes} nodes, {options.workloads} workloads (service accounts), poll every "
        f"{options.poll_interval:g} s, window {options.duration:g} s after one interval of warm-up, "
        f"{options.concurrency} Mounts at once per node; {database}, 5 KV objects over 3 paths",
        f"modes: plain; shared = credentialScope: serviceAccount; refresh = refreshInterval: "
        f"{options.refresh_interval} (SPC parameters, passed through)",
        f"{os.cpu_count()} CPUs shared by the harness, OpenBao, PostgreSQL and every provider; "
        f"load average before: {load_before:.2f}" + ("; --quick: smoke sizes" if options.quick else ""),
        "",
    ]
    return "\n".join(lines)
