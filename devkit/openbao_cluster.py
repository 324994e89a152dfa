"""A real three-node OpenBao cluster with integrated (raft) storage on 127.0.0.1.

Each node is its own `bao server` process with a config file: raft storage in its own
directory, one plain-HTTP listener, and its cluster port next to it. `start` initialises
node 0 (one key share), unseals it, waits for it to lead, then joins the others to it
and unseals them. A test may then kill, terminate, restart, seal or unseal any node; a
restarted node comes back sealed, as a real one does, and `unseal` brings it back in.

Talks to the nodes over plain HTTP with `requests` (no `bao` CLI), so nothing depends on
the CLI's environment. The unseal key and root token stay in memory and never reach a
message. `stop` always ends every process it started and removes the scratch directory.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import requests

from devkit.errors import BackendFailed
from devkit.openbao import find_bao
from devkit.openbao_config import render_raft_config
from devkit.ports import free_port
from devkit.procs import Service, clean_env, log_tail, stop_process

__all__ = ["OpenBaoRaftCluster", "RaftNode"]

_HOST = "127.0.0.1"
_POLL_SECONDS = 0.1
_REQUEST_TIMEOUT = 2.0


@dataclass
class RaftNode:
    """One node: its id, ports, files and (while it runs) its process."""

    index: int
    node_id: str
    port: int
    directory: Path
    proc: subprocess.Popen[bytes] | None = None
    signalled: bool = False  # sent a signal by `send_signal`: its exit is expected

    @property
    def address(self) -> str:
        return f"http://{_HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and not self.signalled


class OpenBaoRaftCluster(Service):
    """Three (or `size`) raft nodes; a context manager, or `start` then `stop`."""

    def __init__(self, size: int = 3, *, startup_timeout: float = 60.0) -> None:
        if size < 1:
            raise ValueError("a cluster needs at least one node")
        self.size = size
        self.startup_timeout = startup_timeout
        self.scratch = Path(tempfile.mkdtemp(prefix="devkit-openbao-raft-"))
        self.nodes: list[RaftNode] = []
        self.root_token = ""
        self.startup_seconds = 0.0
        self._unseal_key = ""
        self._http = requests.Session()

    @property
    def addresses(self) -> list[str]:
        return [node.address for node in self.nodes]

    def start(self) -> None:
        """Start, initialise, unseal and join every node; raise `BackendFailed` when that fails."""
        started = time.monotonic()
        try:
            binary = find_bao()
            for index in range(self.size):
                # PORT is the API listener, PORT+1 the cluster (raft and forwarding) listener.
                node = RaftNode(index, f"n{index + 1}", free_port(span=2), self.scratch / f"n{index + 1}")
                node.directory.mkdir()
                (node.directory / "raft").mkdir()
                self.nodes.append(node)
                self._launch(binary, node)
            first = self.nodes[0]
            self._wait(lambda: self._health(first) is not None, f"{first.node_id} to listen")
            self._initialise(first)
            self.unseal(0)
            self.wait_leader()
            # Autopilot keeps a joined node a non-voter for its stabilisation time (10 s by
            # default); until it votes, losing the leader leaves no quorum to elect another.
            self._post_config(first)
            for node in self.nodes[1:]:
                self._wait(lambda node=node: self._health(node) is not None, f"{node.node_id} to listen")
                self._put(node, "sys/storage/raft/join", {"leader_api_addr": first.address}, token=False)
                self.unseal(node.index)
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def stop(self) -> None:
        """Terminate every node (kill after 10 s) and delete the scratch directory; idempotent."""
        for node in self.nodes:
            proc, node.proc = node.proc, None
            if proc is not None:
                stop_process(proc)
        self._http.close()
        shutil.rmtree(self.scratch, ignore_errors=True)

    # --- what a test does to a node -------------------------------------------------------------

    def kill(self, index: int) -> None:
        """SIGKILL node `index` (a crash: no step-down, the others notice by missed heartbeats)."""
        node = self.nodes[index]
        if node.proc is not None:
            node.proc.kill()
            node.proc.wait()
            node.proc = None

    def terminate(self, index: int) -> None:
        """SIGTERM node `index` and wait for it (a graceful shutdown: a leader steps down)."""
        node = self.nodes[index]
        if node.proc is not None:
            stop_process(node.proc)
            node.proc = None

    def send_signal(self, index: int, signum: int) -> None:
        """Send `signum` to node `index` and return at once: the test goes on while it stops."""
        node = self.nodes[index]
        if node.proc is not None:
            node.signalled = True
            node.proc.send_signal(signum)

    def restart(self, index: int, *, unseal: bool = True) -> None:
        """Start a stopped (or signalled) node again on its own data; it comes back sealed unless `unseal`."""
        node = self.nodes[index]
        if node.signalled and node.proc is not None:
            stop_process(node.proc)  # it was asked to stop already: wait for it, kill it if it lingers
            node.proc = None
        node.signalled = False
        if node.running():
            raise RuntimeError(f"{node.node_id} is still running")
        self._launch(find_bao(), node)
        self._wait(lambda: self._health(node) is not None, f"{node.node_id} to listen again")
        if unseal:
            self.unseal(index)

    def seal(self, index: int) -> None:
        """Seal node `index` through its own API (a sealed node answers 503 to everything)."""
        self._put(self.nodes[index], "sys/seal", None)
        self._wait(lambda: self._health(self.nodes[index]) == 503, f"{self.nodes[index].node_id} to seal")

    def unseal(self, index: int) -> None:
        node = self.nodes[index]
        self._put(node, "sys/unseal", {"key": self._unseal_key}, token=False)
        self._wait(lambda: self._health(node) not in (None, 501, 503), f"{node.node_id} to unseal")

    def health(self, index: int) -> int | None:
        """The status `sys/health` answers on node `index` (200 active, 429 standby, 503 sealed), or None."""
        return self._health(self.nodes[index])

    def leader_index(self) -> int | None:
        """The index of the node that answers `sys/health` as active, if one does."""
        for node in self.nodes:
            if node.running() and self._health(node) == 200:
                return node.index
        return None

    def wait_leader(self, timeout: float | None = None) -> int:
        """Wait until some node is active and return its index."""
        found: list[int] = []

        def elected() -> bool:
            leader = self.leader_index()
            found[:] = [] if leader is None else [leader]
            return leader is not None

        self._wait(elected, "a leader to be elected", timeout)
        return found[0]

    def wait_healthy(self, timeout: float | None = None) -> None:
        """Wait until one node leads, every other node is an unsealed standby, and all of them vote."""
        self._wait(
            lambda: (
                sorted(self._health(node) or 0 for node in self.nodes) == [200] + [429] * (self.size - 1)
                and self._all_voters()
            ),
            "every node to be healthy again",
            timeout,
        )

    def client(self, index: int | None = None) -> Any:
        """An `hvac.Client` with the root token on node `index` (default: the current leader)."""
        chosen = self.wait_leader() if index is None else index
        return hvac.Client(url=self.nodes[chosen].address, token=self.root_token)

    # --- plumbing --------------------------------------------------------------------------------

    def _launch(self, binary: str, node: RaftNode) -> None:
        config = node.directory / "server.hcl"
        config.write_text(
            render_raft_config(_HOST, node.port, node.node_id, node.directory / "raft"), encoding="utf-8"
        )
        env = clean_env(node.directory, drop_prefixes=("VAULT_", "BAO_"))
        with node.log_path.open("ab") as log:
            node.proc = subprocess.Popen(
                [binary, "server", f"-config={config}"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=node.directory,
            )

    def _initialise(self, node: RaftNode) -> None:
        answer = self._put(node, "sys/init", {"secret_shares": 1, "secret_threshold": 1}, token=False)
        self._unseal_key = answer["keys"][0]
        self.root_token = answer["root_token"]

    def _post_config(self, leader: RaftNode) -> None:
        self._put(leader, "sys/storage/raft/autopilot/configuration", {"server_stabilization_time": "1s"})

    def _all_voters(self) -> bool:
        leader = self.leader_index()
        if leader is None:
            return False
        try:
            answer = self._http.get(
                f"{self.nodes[leader].address}/v1/sys/storage/raft/configuration",
                headers={"X-Vault-Token": self.root_token},
                timeout=_REQUEST_TIMEOUT,
            )
            servers = answer.json()["data"]["config"]["servers"]
        except (requests.RequestException, ValueError, KeyError, TypeError):
            return False
        return len(servers) == self.size and all(server.get("voter") for server in servers)

    def _health(self, node: RaftNode) -> int | None:
        if not node.running():
            return None
        try:
            return self._http.get(f"{node.address}/v1/sys/health", timeout=_REQUEST_TIMEOUT).status_code
        except requests.RequestException:
            return None

    def _put(self, node: RaftNode, path: str, body: dict[str, Any] | None, *, token: bool = True) -> Any:
        headers = {"X-Vault-Token": self.root_token} if token else {}
        try:
            response = self._http.put(
                f"{node.address}/v1/{path}", json=body, headers=headers, timeout=_REQUEST_TIMEOUT * 5
            )
        except requests.RequestException as exc:
            raise BackendFailed(f"{node.node_id}: PUT {path} failed: {type(exc).__name__}") from None
        if response.status_code >= 300:
            # The body of sys/init carries the key and token: never show a successful one; an
            # error body holds only Vault's error list.
            raise BackendFailed(
                f"{node.node_id}: PUT {path} answered {response.status_code}: {_errors(response)}; "
                f"log tail:\n{log_tail(node.log_path)}"
            )
        return response.json() if response.content else None

    def _wait(self, condition: Any, what: str, timeout: float | None = None) -> None:
        ends = time.monotonic() + (self.startup_timeout if timeout is None else timeout)
        while not condition():
            for node in self.nodes:
                if node.proc is not None and node.proc.poll() is not None and not node.signalled:
                    raise BackendFailed(
                        f"OpenBao {node.node_id} exited while waiting for {what}; "
                        f"log tail:\n{log_tail(node.log_path)}"
                    )
            if time.monotonic() > ends:
                raise BackendFailed(f"timed out waiting for {what}")
            time.sleep(_POLL_SECONDS)


def _errors(response: requests.Response) -> str:
    try:
        errors = response.json().get("errors")
    except ValueError:
        return "(no JSON body)"
    return "; ".join(str(item) for item in errors) if isinstance(errors, list) else "(no errors list)"
