"""One benchmark run: start the backends, the proxy and the provider, run the scenarios, report.

The only place where the pieces are composed. Everything started is registered on one
ExitStack, so an exception, Ctrl-C or SIGTERM stops it all (the provider first).
"""

from __future__ import annotations

import contextlib
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from bench import layout
from bench.audit import AuditLog
from bench.backends import Backends, start_backends
from bench.compare import Pass, Side, floor_pass, go_interleaved_pass, idle_cpu, interleaved_pass
from bench.compare_report import Comparison, format_comparison
from bench.floor import FloorPoll
from bench.go_timer import GoTimer
from bench.kube_kit import KubeKit, start_kube_kit
from bench.measure import Probe, ScenarioResult
from bench.options import Options, expand_template
from bench.provider_process import ProviderFailed, ProviderProcess
from bench.proxy import TimingProxy
from bench.report import Report, format_report, write_json
from bench.scenarios import SCENARIOS, Bench
from bench.stats import summarize
from bench.workload import Driver, Pod, PodFactory

__all__ = ["run"]

REPO_ROOT = Path(__file__).resolve().parents[1]
# Version calls timed before the scenarios: the gRPC round trip without any Vault work.
_VERSION_CALLS = 100
# --compare-cmd: how long both providers sit idle to measure what they burn between polls.
_IDLE_SECONDS = 10.0


def say(text: str) -> None:
    print(f"==> {text}", file=sys.stderr, flush=True)


def run(options: Options) -> int:
    """Run the benchmark; 0 when every selected scenario ran, 1 when the provider failed."""
    began = time.monotonic()
    # Other work on the machine skews every figure: note how busy it was before we started.
    load_before = os.getloadavg()[0]
    # The proxy's threads stamp each request when they wake up; a short GIL switch interval keeps
    # one busy harness thread from delaying another's stamp by the default 5 ms.
    sys.setswitchinterval(0.0005)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    scratch = Path(tempfile.mkdtemp(prefix="bench-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, scratch, ignore_errors=True)
        say(
            "starting OpenBao (file audit device), the TokenReview stand-in"
            + (" and PostgreSQL" if "b" in options.scenarios else "")
        )
        backends = start_backends(
            stack, database="b" in options.scenarios, storm_objects=options.storm_objects
        )
        rtt = options.network_rtt_seconds
        kube = start_kube_kit(stack, backends.issuer, scratch, rtt) if options.kube_kit else None
        proxy = _proxy(stack, options, backends.bao.address)

        socket_path = scratch / "vault.sock"
        values = {
            "python": options.python,
            "socket": str(socket_path),
            "vault_addr": proxy.address if proxy is not None else backends.bao.address,
            "key_file": str(_write_key(scratch / "hmac.key")),
        }
        if kube is not None:
            values |= {"kube_host": kube.host, "kube_port": kube.port, "sa_dir": str(kube.sa_dir)}
        command = expand_template(options.provider_cmd, values)
        log_path = Path(options.provider_log) if options.provider_log else scratch / "provider.log"
        provider = ProviderProcess.from_template(
            command, _provider_env(options, values), socket_path, log_path
        )
        stack.callback(provider.stop)
        say(f"starting the provider: {command}")
        provider.start()
        rss_start = provider.sample().rss_kib
        other = (
            _start_compare(stack, options, values, scratch, backends.bao.address)
            if options.compare_cmd
            else None
        )

        driver = Driver(socket_path)
        stack.callback(driver.close)
        version_rtt = summarize(driver.version_round_trips(_VERSION_CALLS))
        audit = AuditLog(backends.audit_log)
        audit.take()  # the set-up's own requests belong to no scenario
        probe = Probe(audit, proxy, provider, kube.api_calls if kube is not None else None)
        volumes = scratch / "volumes"
        bench = Bench(options, backends, PodFactory(backends.issuer), driver, probe, volumes)

        comparison = None
        if other is not None:
            comparison = Comparison(other.command, other.provider.runtime, rss_start, other.rss_start_kib)
            ours = Side("ours", provider, driver, proxy, _compare_pod(bench, "cmp-ours"))
            theirs = Side(
                "theirs", other.provider, other.driver, other.proxy, _compare_pod(bench, "cmp-theirs")
            )
            say(f"both idle for {_IDLE_SECONDS:g} s")
            comparison.idle_cpu_ms_per_s = idle_cpu((ours, theirs), _IDLE_SECONDS)
            reads = layout.static_read_paths()
            floor = FloorPoll(driver, backends.bao.address, _floor_token(backends), reads, rtt)
            stack.callback(floor.close)
            comparison.passes = _passes(options, (ours, theirs), floor, scratch)
        results, aborted = _scenarios(bench, options.scenarios)
        if other is not None and comparison is not None and not aborted:
            # The same scenarios against the second provider, one after the other (e is ours alone).
            theirs_bench = replace(
                bench,
                driver=other.driver,
                probe=Probe(audit, other.proxy, other.provider, kube.api_calls if kube is not None else None),
                volumes=scratch / "volumes-compare",
            )
            keys = tuple(key for key in options.scenarios if key != "e")
            comparison.scenarios, aborted = _scenarios(theirs_bench, keys, label="second provider ")

        report = Report(
            command=command,
            runtime=provider.runtime,
            proxy=proxy is not None,
            rss_start_kib=rss_start,
            version_rtt=version_rtt,
            scenarios=results,
            options=_options_json(options),
            host=_host(load_before),
            started_at=started_at,
            aborted=aborted,
            notes=_notes(backends, kube, options),
        )
        driver.close()
        report.provider_exit_code = provider.stop()
        if other is not None:
            other.driver.close()
            other.provider.stop()
        report.duration_seconds = time.monotonic() - began
        print(format_report(report), flush=True)
        if comparison is not None:
            print(format_comparison(comparison, results), flush=True)
            report.comparison = comparison.to_json(results)
        written = write_json(options.json_path, report)
        say(f"JSON written to {written}")
        if aborted:
            print(f"\nprovider log tail:\n{provider.log_tail()}", file=sys.stderr)
            return 1
    return 0


def _scenarios(
    bench: Bench, keys: tuple[str, ...], label: str = ""
) -> tuple[list[ScenarioResult], str | None]:
    """Run `keys` in order; stop at the first provider failure and say where."""
    results: list[ScenarioResult] = []
    for key in keys:
        say(f"{label}scenario {key}")
        try:
            result = SCENARIOS[key](bench)
        except ProviderFailed as exc:
            return results, f"{label}scenario {key}: {exc}"
        results.append(result)
        say(_progress(result))
    return results, None


@dataclass
class _Other:
    """The second provider of `--compare-cmd`, with its own socket, proxy and driver channel."""

    command: str
    provider: ProviderProcess
    proxy: TimingProxy | None
    driver: Driver
    rss_start_kib: int


def _start_compare(
    stack: contextlib.ExitStack, options: Options, values: dict[str, str], scratch: Path, bao_address: str
) -> _Other:
    assert options.compare_cmd is not None
    # Its own proxy, so that each provider's overhead is computed from its own Vault requests.
    proxy = _proxy(stack, options, bao_address)
    socket_path = scratch / "compare.sock"
    values = values | {"socket": str(socket_path), "vault_addr": proxy.address if proxy else bao_address}
    command = expand_template(options.compare_cmd, values)
    env = _provider_env(replace(options, provider_env=options.compare_env), values)
    log_path = Path(options.compare_log) if options.compare_log else scratch / "compare.log"
    provider = ProviderProcess.from_template(command, env, socket_path, log_path)
    stack.callback(provider.stop)
    say(f"starting the second provider: {command}")
    provider.start()
    driver = Driver(socket_path)
    stack.callback(driver.close)
    return _Other(command, provider, proxy, driver, provider.sample().rss_kib)


def _proxy(stack: contextlib.ExitStack, options: Options, bao_address: str) -> TimingProxy | None:
    """A started timing proxy to OpenBao, a network round trip away if asked; None with --no-proxy."""
    if not options.proxy:
        return None
    return stack.enter_context(TimingProxy(bao_address, options.network_rtt_seconds))


def _compare_pod(bench: Bench, name: str) -> Pod:
    return bench.pods.pod("bench-a", name, "bench-app", layout.static_objects(), bench.volumes / name)


def _passes(options: Options, sides: tuple[Side, Side], floor: FloorPoll, scratch: Path) -> list[Pass]:
    passes = []
    for spacing_ms in options.compare_spacings_ms:
        say(f"interleaved warm polls (ABBA), {spacing_ms:g} ms apart: {options.polls} rounds")
        done = interleaved_pass(sides, options.polls, spacing_ms / 1000.0, options.warmup)
        say(_pass_progress(done))
        say(f"  then {options.polls} floor polls, {spacing_ms:g} ms apart")
        floors = floor_pass(floor, options.polls, spacing_ms / 1000.0, options.warmup)
        passes.append(replace(done, floor=floors))
    if options.compare_go_spacings_ms:
        say("building the Go timer (bench/drivertimer)")
        timer = GoTimer.build(scratch)
    for spacing_ms in options.compare_go_spacings_ms:
        say(f"interleaved warm polls (ABBA) from the driver's Go client, {spacing_ms:g} ms apart")
        passes.append(go_interleaved_pass(sides, timer, options.polls, spacing_ms / 1000.0, options.warmup))
        say(_pass_progress(passes[-1]))
    return passes


def _floor_token(backends: Backends) -> str:
    """A token of the bench policy for the floor's reads: the ACL work a pod's token costs Vault."""
    created = backends.root.auth.token.create(policies=[layout.POLICY_NAME], ttl="4h")
    return str(created["auth"]["client_token"])


def _pass_progress(done: Pass) -> str:
    return "  " + ", ".join(f"{f.label} p50 {f.latency.p50:.2f} ms" for f in done.sides if f.latency)


def _write_key(path: Path) -> Path:
    """32 random bytes, owner-only, for `-hmac-key-file`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_bytes(32))
    return path


def _provider_env(options: Options, values: dict[str, str]) -> dict[str, str]:
    """This environment without VAULT_*/BAO_*, with the repository importable, plus --provider-env."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("VAULT_", "BAO_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    env.update({key: expand_template(value, values) for key, value in options.provider_env})
    return env


def _progress(result: ScenarioResult) -> str:
    if result.skipped:
        return f"  skipped: {result.skipped}"
    p50 = f"{result.latency.p50:.2f} ms" if result.latency else "-"
    return f"  {result.mounts} Mounts, {result.errors} errors, p50 {p50}, {result.wall_seconds:.1f} s"


def _options_json(options: Options) -> dict[str, object]:
    data = asdict(options)
    data["provider_env"] = [f"{key}={value}" for key, value in options.provider_env]
    return data


def _host(load_before: float) -> dict[str, object]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "checkout": _checkout(),
        "load_average_1m_before": round(load_before, 2),
    }


def _checkout() -> str:
    """This checkout's commit, and whether provider/ differs from it (what the default command runs)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "provider"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit} (provider/ modified)" if dirty else commit


def _notes(backends: Backends, kube: KubeKit | None, options: Options) -> list[str]:
    notes = []
    if options.quick:
        notes.append("--quick: smoke-test sizes, not comparable figures")
    if backends.postgres is None and "b" in options.scenarios:
        notes.append(f"scenario b skipped: {backends.why_no_database}")
    if options.network_rtt_ms:
        notes.append(
            f"--network-rtt-ms {options.network_rtt_ms:g}: every Vault request and kube-kit call is served "
            "that much later (in the proxy and the kit; counted as Vault or Kubernetes time)"
        )
    if kube is not None:
        notes.append(f"--kube-kit: HTTPS apiserver at {kube.host}:{kube.port} for the provider's own calls")
    notes.append(
        "the harness (gRPC client, proxy), OpenBao and PostgreSQL share this machine's "
        f"{os.cpu_count()} CPUs with the provider"
    )
    return notes
