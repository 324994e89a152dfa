"""What the monitoring e2e runs besides the session's stack: the Prometheus Operator's CRDs, a real
Prometheus on loopback, and an OpenBao that keeps its data across a stop and a start.

- The CRDs are generated with controller-gen from the Operator's API types module (its parent
  module is not on the proxy as YAML), once, and cached in
  `~/.cache/vault-csi-provider/e2e/prometheus-operator-crds-<version>/` like the binaries.
- Prometheus is Debian's (`prometheus` package, scripts/ensure-test-tools.sh).
- The OpenBao is a real server with raft storage on one node (OpenBao has no file storage),
  initialised and unsealed with one key share:
  unlike the dev server, it comes back with the same tokens, leases and secrets after a restart.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import hvac
import requests
import yaml
from binaries import BuildFailed, cache_root

from devkit.openbao import find_bao
from devkit.ports import free_port
from devkit.procs import clean_env, log_tail, stop_process

__all__ = ["PersistentOpenBao", "PrometheusServer", "operator_crds", "shortened_rules"]

CONTROLLER_GEN = "sigs.k8s.io/controller-tools/cmd/controller-gen"
CONTROLLER_GEN_VERSION = "v0.16.5"
MONITORING_API = "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring"
MONITORING_API_VERSION = "v0.79.2"
GO_TIMEOUT_SECONDS = 900


def _go(go: str, what: str, *args: str, cwd: Path | None = None, env: dict[str, str]) -> str:
    done = subprocess.run(
        [go, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=GO_TIMEOUT_SECONDS, check=False
    )
    if done.returncode != 0:
        raise BuildFailed(f"{what} failed:\n{(done.stderr + done.stdout)[-3000:]}")
    return done.stdout


def operator_crds() -> list[Path]:
    """The Operator's CRD manifests (PodMonitor, PrometheusRule, ...), generated once; raises BuildFailed."""
    target = cache_root() / f"prometheus-operator-crds-{MONITORING_API_VERSION}"
    if target.is_dir() and any(target.glob("*.yaml")):
        return sorted(target.glob("*.yaml"))
    go = shutil.which("go")
    if go is None:
        raise BuildFailed("generating the Prometheus Operator's CRDs needs Go (1.22 or later) on PATH")
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-buildvcs=false"}
    controller_gen = cache_root() / f"controller-gen-{CONTROLLER_GEN_VERSION}" / "controller-gen"
    target.parent.mkdir(parents=True, exist_ok=True)
    # Private directories and renames: a parallel session never sees half a binary or half the CRDs.
    if not controller_gen.exists():
        controller_gen.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=controller_gen.parent, prefix=".build-") as scratch:
            module = f"{CONTROLLER_GEN}@{CONTROLLER_GEN_VERSION}"
            _go(go, f"go install {module}", "install", module, env={**env, "GOBIN": scratch})
            os.replace(Path(scratch) / "controller-gen", controller_gen)
    module = f"{MONITORING_API}@{MONITORING_API_VERSION}"
    listing = _go(go, f"go mod download {module}", "mod", "download", "-json", module, env=env)
    source = Path(json.loads(listing)["Dir"])
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".crds-") as scratch:
        done = subprocess.run(
            [str(controller_gen), "crd:allowDangerousTypes=true", "paths=./v1/...",
             f"output:crd:artifacts:config={scratch}"],
            cwd=source, env=env, capture_output=True, text=True, timeout=GO_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip
        if done.returncode != 0 or not any(Path(scratch).glob("*.yaml")):
            raise BuildFailed(f"controller-gen for {module} failed:\n{(done.stderr + done.stdout)[-3000:]}")
        os.replace(scratch, target)
        Path(scratch).mkdir()  # for TemporaryDirectory's clean-up
    return sorted(target.glob("*.yaml"))


def shortened_rules(text: str, window: str, hold: str) -> str:
    """The rule file with every range `[...]` set to `window` and every `for:` to `hold`.

    The shipped rules look over minutes, as a real cluster needs; a test cannot wait that long.
    """
    text = re.sub(r"\[\d+[smh]\]", f"[{window}]", text)
    return re.sub(r"^(\s+)for: \S+$", rf"\g<1>for: {hold}", text, flags=re.MULTILINE)


class PrometheusServer:
    """Debian's Prometheus on 127.0.0.1, scraping `targets` (address -> target labels) every `interval`."""

    def __init__(self, binary: str, directory: Path, job: str, targets: dict[str, dict[str, str]],
                 rules: str, interval: str = "2s") -> None:  # fmt: skip
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (directory / "rules.yaml").write_text(rules)
        config = {
            "global": {
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "evaluation_interval": interval,
            },
            "rule_files": [str(directory / "rules.yaml")],
            "scrape_configs": [
                {
                    "job_name": job,
                    "static_configs": [
                        {"targets": [address], "labels": labels} for address, labels in targets.items()
                    ],
                }
            ],
        }
        (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = directory / "prometheus.log"
        self.argv = [
            binary,
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"prometheus exited at start:\n{log_tail(self.log)}")
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"prometheus not ready within {timeout:.0f} s:\n{log_tail(self.log)}")
            time.sleep(0.2)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc)

    def api(self, path: str, **params: Any) -> Any:
        answer = requests.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = answer.json()
        assert body.get("status") == "success", f"{path} {params}: {answer.status_code} {body}"
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=expr)["result"])

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        return list(self.api("query_range", query=expr, start=start, end=end, step=step)["result"])

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts pending or firing now, as the rules evaluate them."""
        return list(self.api("alerts")["alerts"])


class PersistentOpenBao:
    """A real OpenBao server, one-node raft storage on a fixed loopback port: a restart keeps its data."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        port = free_port(span=2)
        self.address = f"http://127.0.0.1:{port}"
        self.log = directory / "openbao.log"
        self.config = directory / "openbao.hcl"
        data = directory / "raft"
        data.mkdir()
        self.config.write_text(
            f'storage "raft" {{\n  path = "{data}"\n  node_id = "solo"\n}}\n'
            f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
            f'api_addr = "{self.address}"\ncluster_addr = "http://127.0.0.1:{port + 1}"\n'
        )
        self.root_token = ""
        self._unseal_key = ""
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        """Start, initialise on first start, unseal; return once it answers as the active node."""
        env = clean_env(self.directory, drop_prefixes=("VAULT_", "BAO_"))
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                [find_bao(), "server", f"-config={self.config}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.directory,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            status = self._health()
            if status == 200:
                return
            if status == 501:
                answer = hvac.Client(url=self.address).sys.initialize(secret_shares=1, secret_threshold=1)
                self.root_token, self._unseal_key = answer["root_token"], answer["keys"][0]
            elif status == 503:
                hvac.Client(url=self.address).sys.submit_unseal_key(self._unseal_key)
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"OpenBao not active within {timeout:.0f} s:\n{log_tail(self.log)}")
            time.sleep(0.1)

    def _health(self) -> int | None:
        if self._proc is None or self._proc.poll() is not None:
            raise RuntimeError(f"OpenBao exited:\n{log_tail(self.log)}")
        try:
            return requests.get(f"{self.address}/v1/sys/health", timeout=1).status_code
        except requests.RequestException:
            return None

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc)

    def client(self) -> Any:
        return hvac.Client(url=self.address, token=self.root_token)
