"""Measure how fast the provider serves, and how much memory it holds once it does.

Starts `python -m provider -endpoint=<tmp>/vault.sock -hmac-key-file=<tmp key>` N times
(outside a cluster, so no Kubernetes API call) and, for each run, takes the time
from just before the process is spawned until its socket answers a gRPC Version
call, then reads the process's VmRSS from /proc. Prints every run and the
median, min and max. The health server listens on an ephemeral loopback port
(`-health-addr=127.0.0.1:0`) so that runs never collide on :8080; it is started
before the socket, so its cost is included.

    python scripts/measure_startup.py            # 10 runs
    python scripts/measure_startup.py -n 20 -- -log-level=debug
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

from provider.v1alpha1 import service_pb2, service_pb2_grpc

POLL_SECONDS = 0.002
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Run:
    seconds_to_serving: float
    rss_kib: int
    exit_code: int


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


def _answers_version(socket_path: Path) -> bool:
    # A fresh channel each time, without wait_for_ready: gRPC's reconnect backoff
    # (1 s at first) would otherwise be measured instead of the provider.
    with grpc.insecure_channel(f"unix://{socket_path}") as channel:
        stub = service_pb2_grpc.CSIDriverProviderStub(channel)
        try:
            stub.Version(service_pb2.VersionRequest(version="v1alpha1"), timeout=1.0)
        except grpc.RpcError:
            return False
    return True


def measure_once(python: str, extra_args: list[str]) -> Run:
    with tempfile.TemporaryDirectory(prefix="vcp-startup-") as tmp:
        socket_path = Path(tmp) / "vault.sock"
        key_file = Path(tmp) / "hmac.key"
        key_file.write_bytes(os.urandom(32))
        log_file = Path(tmp) / "provider.log"
        argv = [
            python,
            "-m",
            "provider",
            f"-endpoint={socket_path}",
            f"-hmac-key-file={key_file}",
            "-health-addr=127.0.0.1:0",
            *extra_args,
        ]
        # Outside a cluster on purpose: no KUBERNETES_SERVICE_HOST, no Vault address.
        env = {
            key: value for key, value in os.environ.items() if not key.startswith(("KUBERNETES_", "VAULT_"))
        }
        with log_file.open("wb") as log:
            started = time.perf_counter()
            process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"provider exited with {process.returncode} before serving:\n{log_file.read_text()}"
                    )
                if time.perf_counter() - started > START_TIMEOUT_SECONDS:
                    raise RuntimeError(f"provider did not serve within {START_TIMEOUT_SECONDS:.0f} s")
                if socket_path.exists() and _answers_version(socket_path):
                    break
                time.sleep(POLL_SECONDS)
            elapsed = time.perf_counter() - started
            rss = _rss_kib(process.pid)
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if process.returncode != 0:
            raise RuntimeError(
                f"provider exited with {process.returncode} after SIGTERM:\n{log_file.read_text()}"
            )
        return Run(elapsed, rss, process.returncode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", "--runs", type=int, default=10, help="how many starts (default 10)")
    parser.add_argument("--python", default=sys.executable, help="interpreter to start the provider with")
    parser.add_argument("extra", nargs="*", help="more provider flags, after --")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    runs = []
    for index in range(1, args.runs + 1):
        run = measure_once(args.python, args.extra)
        runs.append(run)
        print(
            f"run {index:2}: serving after {run.seconds_to_serving * 1000:7.1f} ms, "
            f"VmRSS {run.rss_kib / 1024:6.1f} MiB"
        )

    times_ms = [run.seconds_to_serving * 1000 for run in runs]
    rss_mib = [run.rss_kib / 1024 for run in runs]
    print(
        f"start to serving Version: median {statistics.median(times_ms):.1f} ms, "
        f"min {min(times_ms):.1f} ms, max {max(times_ms):.1f} ms ({len(runs)} runs)"
    )
    print(
        f"VmRSS once serving: median {statistics.median(rss_mib):.1f} MiB, "
        f"min {min(rss_mib):.1f} MiB, max {max(rss_mib):.1f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
