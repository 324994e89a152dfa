"""`python -m bench.soak`: load and soak of the provider process (not part of the test run).

Two phases against a real OpenBao (kubernetes auth answered by the devkit's TokenReview
stand-in), everything on 127.0.0.1, the provider started as `python -m provider`:

1. load: `--concurrent` Mounts (default 500) started at once from as many threads over one
   shared gRPC channel, like a node booting with that many pods; every one must succeed.
2. soak: `--mounts` Mounts (default 20,000), each for a new pod (its own name, UID and
   freshly minted service-account token, so each logs in and fills the token cache), reading
   one small KV v2 secret, `--workers` at a time. Every `--sample-every` Mounts the provider's
   resident memory (VmRSS), thread count (/proc/PID/status Threads) and open file descriptors
   (/proc/PID/fd) are sampled.

Prints a table of the samples and a JSON summary (also written to `--json`) with the growth
from the first to the last sample and over the second half, where caches are full and
nothing should grow any more. Exits 1 on any failed Mount or when the second half grows
beyond the `--max-*-growth` bounds. The run stops by itself after `--max-seconds`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from devkit import FakeApiServer, OpenBaoServer, ServiceAccountTokenIssuer
from devkit import vault_setup as setup
from provider.tools.driver import PodInfo, ProviderCallError, ProviderClient, build_mount_payload

__all__ = ["main"]

NAMESPACE = "soak"
SERVICE_ACCOUNT = "app"
ROLE = "soak"
KV_MOUNT = "secret"
KV_PATH = "soak/config"
POLICY = f'path "{KV_MOUNT}/data/soak/*" {{ capabilities = ["read"] }}'
OBJECTS = f"- objectName: password\n  secretPath: {KV_MOUNT}/data/{KV_PATH}\n  secretKey: password\n"
EXPECTED = b"soak-password-value"
MOUNT_TIMEOUT_SECONDS = 120.0
_READY_SECONDS = 30.0


@dataclass(frozen=True)
class Sample:
    mounts: int
    seconds: float
    rss_mib: float
    threads: int
    fds: int
    failures: int


class Provider:
    """`python -m provider` on a private socket, stopped with SIGTERM."""

    def __init__(self, directory: Path, vault_addr: str, log_path: Path, extra: Sequence[str]) -> None:
        self.socket_path = directory / "vault.sock"
        key_file = directory / "hmac.key"
        key_file.write_bytes(secrets.token_bytes(32))
        key_file.chmod(0o600)
        self.argv = [
            sys.executable,
            "-m",
            "provider",
            f"-endpoint={self.socket_path}",
            f"-vault-addr={vault_addr}",
            f"-hmac-key-file={key_file}",
            "-health-addr=",
            *extra,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH", "")]))
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, cwd=root
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + _READY_SECONDS
        with ProviderClient(self.socket_path, timeout_seconds=2) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the provider exited with {self.proc.returncode}")
                with contextlib.suppress(Exception):
                    if self.socket_path.exists():
                        client.version()
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the provider did not answer within {_READY_SECONDS:.0f} s")
                time.sleep(0.05)

    def sample(self, mounts: int, seconds: float, failures: int) -> Sample:
        status = Path(f"/proc/{self.proc.pid}/status").read_text().splitlines()
        fields = dict(line.split(":", 1) for line in status if ":" in line)
        rss_kib = int(fields["VmRSS"].split()[0])
        threads = int(fields["Threads"])
        fds = len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        return Sample(mounts, round(seconds, 1), round(rss_kib / 1024, 1), threads, fds, failures)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


class Pods:
    """Request strings for pod number i: a distinct name, UID and freshly minted token each."""

    def __init__(self, issuer: ServiceAccountTokenIssuer, prefix: str) -> None:
        self._issuer = issuer
        self._prefix = prefix

    def request(self, index: int) -> tuple[str, str, str]:
        name = f"{self._prefix}-{index}"
        uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"soak/{name}"))
        token = self._issuer.mint(
            NAMESPACE, SERVICE_ACCOUNT, name, uid, audiences=["vault"], ttl_seconds=3600
        )
        expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        pod = PodInfo(namespace=NAMESPACE, name=name, uid=uid, service_account=SERVICE_ACCOUNT)
        attributes, secrets_json = build_mount_payload(
            {"roleName": ROLE, "objects": OBJECTS},
            spc_name="soak",
            pod=pod,
            tokens={"vault": (token, expires)},
        )
        return attributes, secrets_json, f"/var/lib/kubelet/pods/{uid}/volumes/kubernetes.io~csi/soak/mount"


def mount_once(client: ProviderClient, request: tuple[str, str, str]) -> tuple[float, str | None]:
    """(seconds, error or None) of one Mount; a wrong file counts as a failure too."""
    started = time.perf_counter()
    try:
        result = client.mount(*request)
    except ProviderCallError as exc:
        return time.perf_counter() - started, f"{exc.code.name}: {exc.message[:200]}"
    except Exception as exc:  # the driver's own checks, or anything unexpected
        return time.perf_counter() - started, f"{type(exc).__name__}: {str(exc)[:200]}"
    seconds = time.perf_counter() - started
    if [(f.path, f.contents) for f in result.files] != [("password", EXPECTED)]:
        return seconds, "unexpected files"
    return seconds, None


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def run_concurrent(client: ProviderClient, pods: Pods, count: int) -> dict[str, Any]:
    """`count` Mounts released at the same instant from `count` threads."""
    requests = [pods.request(index) for index in range(count)]
    barrier = threading.Barrier(count + 1)

    def one(request: tuple[str, str, str]) -> tuple[float, str | None]:
        barrier.wait()
        return mount_once(client, request)

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(one, request) for request in requests]
        barrier.wait()
        started = time.perf_counter()
        outcomes = [future.result() for future in futures]
        elapsed = time.perf_counter() - started
    latencies = [seconds for seconds, _ in outcomes]
    errors = [error for _, error in outcomes if error]
    return {
        "mounts": count,
        "failures": len(errors),
        "first_errors": errors[:5],
        "seconds": round(elapsed, 2),
        "mounts_per_second": round(count / elapsed, 1),
        "latency_ms": {
            "p50": round(percentile(latencies, 0.5) * 1000, 1),
            "p95": round(percentile(latencies, 0.95) * 1000, 1),
            "max": round(max(latencies) * 1000, 1),
        },
    }


def run_soak(
    client: ProviderClient,
    provider: Provider,
    pods: Pods,
    total: int,
    workers: int,
    every: int,
    max_seconds: float,
) -> tuple[list[Sample], list[str], int]:
    """Up to `total` Mounts of new pods; samples every `every` completions. (samples, errors, done)."""
    lock = threading.Lock()
    state = {"next": 0, "done": 0}
    errors: list[str] = []
    stop = threading.Event()
    started = time.monotonic()

    def worker() -> None:
        while not stop.is_set():
            with lock:
                index = state["next"]
                if index >= total:
                    return
                state["next"] += 1
            _, error = mount_once(client, pods.request(index))
            with lock:
                state["done"] += 1
                if error:
                    errors.append(error)

    samples = [provider.sample(0, 0.0, 0)]
    print_row(samples[0])
    threads = [threading.Thread(target=worker, name=f"soak-{n}", daemon=True) for n in range(workers)]
    for thread in threads:
        thread.start()
    next_sample = every
    while any(thread.is_alive() for thread in threads):
        time.sleep(0.2)
        with lock:
            done, failed = state["done"], len(errors)
        if time.monotonic() - started > max_seconds:
            stop.set()
        if done >= next_sample or (done == total and samples[-1].mounts != total):
            samples.append(provider.sample(done, time.monotonic() - started, failed))
            print_row(samples[-1])
            next_sample = (done // every + 1) * every
    for thread in threads:
        thread.join()
    with lock:
        done = state["done"]
    if samples[-1].mounts != done:
        samples.append(provider.sample(done, time.monotonic() - started, len(errors)))
        print_row(samples[-1])
    return samples, errors, done


def print_row(sample: Sample) -> None:
    print(
        f"{sample.mounts:>8} {sample.seconds:>9.1f} {sample.rss_mib:>9.1f} {sample.threads:>8} "
        f"{sample.fds:>6} {sample.failures:>9}",
        flush=True,
    )


def growth(first: Sample, last: Sample) -> dict[str, float]:
    return {
        "from_mounts": first.mounts,
        "to_mounts": last.mounts,
        "rss_mib": round(last.rss_mib - first.rss_mib, 1),
        "threads": last.threads - first.threads,
        "fds": last.fds - first.fds,
    }


def start_backends(stack: contextlib.ExitStack) -> tuple[OpenBaoServer, ServiceAccountTokenIssuer]:
    issuer = ServiceAccountTokenIssuer()
    apiserver = stack.enter_context(FakeApiServer(issuer))
    bao = OpenBaoServer()
    stack.callback(bao.stop)
    bao.start()
    root = bao.client()
    setup.write_policy(root, ROLE, POLICY)
    setup.enable_kubernetes_auth(root, "kubernetes", apiserver.url)
    setup.kubernetes_role(root, "kubernetes", ROLE, [SERVICE_ACCOUNT], [NAMESPACE], [ROLE], ttl="20m")
    setup.put_kv(root, KV_MOUNT, KV_PATH, {"password": EXPECTED.decode()})
    return bao, issuer


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--concurrent", type=int, default=500, help="Mounts at once in the load phase (0: skip)"
    )
    parser.add_argument(
        "--mounts", type=int, default=20_000, help="Mounts of distinct pods in the soak phase"
    )
    parser.add_argument("--workers", type=int, default=16, help="soak: Mounts in flight at a time")
    parser.add_argument("--sample-every", type=int, default=1000, help="soak: Mounts between samples")
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="soak: stop after this long")
    parser.add_argument("--max-rss-growth-mib", type=float, default=32.0, help="second-half bound")
    parser.add_argument("--max-thread-growth", type=int, default=4, help="second-half bound")
    parser.add_argument("--max-fd-growth", type=int, default=8, help="second-half bound")
    parser.add_argument("--json", metavar="PATH", help="also write the JSON summary here")
    parser.add_argument("--provider-log", metavar="PATH", help="keep the provider's log here")
    parser.add_argument(
        "--provider-arg", action="append", default=[], metavar="ARG", help="extra provider flag (repeatable)"
    )
    args = parser.parse_args(argv)
    if args.concurrent < 0 or args.mounts < 0 or args.workers < 1 or args.sample_every < 1:
        parser.error("counts must not be negative, --workers and --sample-every at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-")))
        log_path = Path(args.provider_log) if args.provider_log else directory / "provider.log"
        bao, issuer = start_backends(stack)
        provider = Provider(directory, bao.address, log_path, args.provider_arg)
        stack.callback(provider.stop)
        provider.wait_ready()
        client = stack.enter_context(
            ProviderClient(provider.socket_path, timeout_seconds=MOUNT_TIMEOUT_SECONDS)
        )
        print(f"provider pid {provider.proc.pid}: {' '.join(provider.argv[1:])}", flush=True)

        before_load = provider.sample(0, 0.0, 0)
        load: dict[str, Any] = {}
        if args.concurrent:
            print(f"load: {args.concurrent} concurrent Mounts ...", flush=True)
            load = run_concurrent(client, Pods(issuer, "load"), args.concurrent)
            load["provider_before"] = asdict(before_load)
            load["provider_after"] = asdict(
                provider.sample(args.concurrent, load["seconds"], load["failures"])
            )
            print(json.dumps(load), flush=True)

        print(f"soak: {args.mounts} Mounts of distinct pods, {args.workers} at a time", flush=True)
        print(f"{'mounts':>8} {'seconds':>9} {'rss_MiB':>9} {'threads':>8} {'fds':>6} {'failures':>9}")
        samples, errors, done = run_soak(
            client,
            provider,
            Pods(issuer, "soak"),
            args.mounts,
            args.workers,
            args.sample_every,
            args.max_seconds,
        )
        elapsed = samples[-1].seconds
        half = min(samples, key=lambda sample: abs(sample.mounts - done / 2))
        second_half = growth(half, samples[-1])
        summary: dict[str, Any] = {
            "load": load,
            "soak": {
                "mounts_requested": args.mounts,
                "mounts_done": done,
                "failures": len(errors),
                "first_errors": errors[:5],
                "seconds": elapsed,
                "mounts_per_second": round(done / elapsed, 1) if elapsed else 0.0,
                "samples": [asdict(sample) for sample in samples],
                "growth": growth(samples[0], samples[-1]),
                "growth_second_half": second_half,
            },
            "provider_argv": provider.argv[1:],
        }
        exit_code = provider.stop()
        summary["provider_exit_code"] = exit_code

    bounded = (
        second_half["rss_mib"] <= args.max_rss_growth_mib
        and second_half["threads"] <= args.max_thread_growth
        and second_half["fds"] <= args.max_fd_growth
    )
    verdict = {
        "zero_failures": not errors and not load.get("failures"),
        "second_half_bounded": bounded,
        "all_mounts_done": done == args.mounts,
    }
    summary["verdict"] = verdict
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0 if all(verdict.values()) and exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
