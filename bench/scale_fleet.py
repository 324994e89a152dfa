"""The scale benchmark's nodes and pods: N provider processes, M pods on each, and their Mounts.

A node is one provider process on its own socket, driven over one gRPC channel as the
driver on that node would. Every node gets the same HMAC key file, as a DaemonSet mounts
one Secret on every node. Pods belong to `workloads` service accounts (one namespace
each) spread round-robin, so every workload has replicas on every node; each pod has its
own name, UID and service-account token.

`Poller` re-Mounts each pod's volume every poll interval, the pods' phases spread evenly
over the interval, `concurrency` Mounts at a time per node. A poll that comes due while
the node is still busy waits (its lag is recorded); one that falls a whole interval
behind is not made up later, as a timer that fires late fires once.
"""

from __future__ import annotations

import contextlib
import heapq
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.options import expand_template
from bench.procfs import ProcessSample
from bench.provider_process import ProviderProcess
from bench.workload import Driver, MountSample, Pod, PodFactory

__all__ = ["Node", "PollSample", "Poller", "make_pods", "mount_once", "start_nodes", "stop_nodes"]

_JOIN_SECONDS = 90.0


@dataclass(frozen=True)
class PollSample:
    """One Mount of a pod on a node; `lag` is how late it started after it came due (seconds)."""

    node: int
    mount: MountSample
    lag: float = 0.0


@dataclass
class Node:
    """A provider process, the driver's channel to it, and the pods scheduled on it."""

    index: int
    provider: ProviderProcess
    driver: Driver | None = None
    pods: tuple[Pod, ...] = ()

    def sample(self) -> ProcessSample:
        return self.provider.sample()


def start_nodes(
    stack: contextlib.ExitStack,
    count: int,
    command: str,
    values: Mapping[str, str],
    env: Mapping[str, str],
    extra_env: Mapping[str, str],
    directory: Path,
) -> list[Node]:
    """Start `count` provider processes at once; each gets `{socket}` and `{node}` of its own.

    `extra_env` values (`--provider-env`) may use the placeholders; `env` is taken as it is.

    `stack` stops them all (`stop_nodes`), also those started when another failed to.
    """
    nodes: list[Node] = []
    stack.callback(stop_nodes, nodes)
    for index in range(count):
        socket_path = directory / f"node-{index}.sock"
        own = {**values, "socket": str(socket_path), "node": str(index)}
        own_env = {**env, **{key: expand_template(value, own) for key, value in extra_env.items()}}
        log_path = directory / f"node-{index}.log"
        provider = ProviderProcess.from_template(
            expand_template(command, own), own_env, socket_path, log_path
        )
        nodes.append(Node(index, provider))
    with ThreadPoolExecutor(max_workers=count) as pool:
        for future in [pool.submit(node.provider.start) for node in nodes]:
            future.result()
    for node in nodes:
        node.driver = Driver(node.provider.socket_path)
    return nodes


def stop_nodes(nodes: list[Node]) -> None:
    """Close every channel and stop every provider (SIGTERM, then SIGKILL)."""
    for node in nodes:
        if node.driver is not None:
            node.driver.close()
            node.driver = None
    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        list(pool.map(lambda node: node.provider.stop(), nodes))


def make_pods(
    factory: PodFactory,
    nodes: list[Node],
    per_node: int,
    workloads: int,
    step: int,
    parameters: Mapping[str, str],
    objects: list[dict[str, Any]],
) -> None:
    """Give every node `per_node` pods reading `objects`, with `parameters` added to their SPC.

    Pod j runs workload j % `workloads`; names (and so UIDs) are unique per step.
    """
    for node in nodes:
        pods = []
        for j in range(per_node):
            workload = j % workloads
            name = f"bench-w{workload}"  # the namespace and the service account
            pod_name = f"app-s{step}-n{node.index}-{j:04d}"
            pods.append(factory.pod(name, pod_name, name, objects, None, extra_parameters=parameters))
        node.pods = tuple(pods)


def mount_once(nodes: list[Node], concurrency: int) -> list[PollSample]:
    """The volumes' first Mounts: every pod of every node, `concurrency` at a time per node."""
    results: list[PollSample] = []
    lock = threading.Lock()

    def node_mounts(node: Node) -> None:
        driver = node.driver
        assert driver is not None
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            samples = list(pool.map(driver.mount, node.pods))
        with lock:
            results.extend(PollSample(node.index, sample) for sample in samples)

    with ThreadPoolExecutor(max_workers=len(nodes)) as pool:
        list(pool.map(node_mounts, nodes))
    return results


class Poller:
    """Rotation polls on every node until `stop()`; the samples accumulate in `samples`."""

    def __init__(self, nodes: list[Node], interval: float, concurrency: int) -> None:
        self.samples: list[PollSample] = []
        self._interval = interval
        self._concurrency = concurrency
        self._nodes = nodes
        self._lock = threading.Condition()
        self._stopped = False
        self._threads: list[threading.Thread] = []
        # Per node: a heap of (due, pod index).
        self._due: list[list[tuple[float, int]]] = [[] for _ in nodes]

    def start(self, first: float) -> None:
        """Schedule each pod's first poll in [first, first + interval); start the worker threads."""
        count = len(self._nodes)
        for node in self._nodes:
            per_node = len(node.pods)
            for j in range(per_node):
                # Nodes are offset by a fraction of one pod's slot, so their polls interleave, and no
                # poll comes due at first + k * interval, where the runner opens its window.
                phase = (j + (node.index + 0.5) / count) / per_node
                self._due[node.index].append((first + phase * self._interval, j))
            heapq.heapify(self._due[node.index])
            for worker in range(self._concurrency):
                thread = threading.Thread(
                    target=self._work, args=(node,), name=f"poll-{node.index}-{worker}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        """Stop scheduling; wait for the Mounts in flight."""
        with self._lock:
            self._stopped = True
            self._lock.notify_all()
        deadline = time.monotonic() + _JOIN_SECONDS
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _next(self, node: Node) -> tuple[float, int] | None:
        heap = self._due[node.index]
        with self._lock:
            while not self._stopped:
                if heap:
                    wait = heap[0][0] - time.perf_counter()
                    if wait <= 0:
                        return heapq.heappop(heap)
                    self._lock.wait(timeout=wait)
                else:
                    self._lock.wait()
            return None

    def _work(self, node: Node) -> None:
        driver = node.driver
        assert driver is not None
        while (due_and_pod := self._next(node)) is not None:
            due, j = due_and_pod
            mount = driver.mount(node.pods[j])
            # The next poll is one interval after this one was due; a poll missed entirely is skipped.
            following = max(due + self._interval, time.perf_counter())
            with self._lock:
                self.samples.append(PollSample(node.index, mount, lag=max(0.0, mount.start - due)))
                heapq.heappush(self._due[node.index], (following, j))
                self._lock.notify_all()
