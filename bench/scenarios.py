"""The four scenarios. Each builds its pods, drives Mounts through the `Driver`, and lets the
`Probe` attribute everything that happened in its measured window.

    a  warm rotation poll: one pod, 5 objects over 3 KV paths; warm-up, then N sequential polls
    b  a plus a database credential and a PKI certificate: N sequential polls
    c  mount storm: many pods x 10 objects, all released at once (one thread each)
    d  churn: many distinct pods over time, each mounting once, every other one twice
    e  a's three KV paths read by 5 Agent-style template objects instead: N sequential polls
       (not in HashiCorp's provider; run it against ours only)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import layout
from bench.backends import Backends, count_database_leases
from bench.measure import Probe, ScenarioResult
from bench.options import Options
from bench.workload import MOUNT_TIMEOUT_SECONDS, Driver, MountSample, Pod, PodFactory

__all__ = ["SCENARIOS", "Bench", "Scenario"]

# In d, a pod's second Mount (a rotation poll) comes this many new pods after its first.
REMOUNT_AFTER_PODS = 50
_JOIN_SECONDS = MOUNT_TIMEOUT_SECONDS * 3


@dataclass
class Bench:
    """What every scenario needs."""

    options: Options
    backends: Backends
    pods: PodFactory
    driver: Driver
    probe: Probe
    volumes: Path


Scenario = Callable[[Bench], ScenarioResult]


def warm_poll(bench: Bench) -> ScenarioResult:
    objects = layout.static_objects()
    pod = bench.pods.pod("bench-a", "app-0", "bench-app", objects, bench.volumes / "a")
    title = f"warm rotation poll: 1 pod, {len(objects)} objects over 3 KV paths"
    return _sequential_polls(bench, ScenarioResult("a", title), pod, bench.options.polls)


def template_poll(bench: Bench) -> ScenarioResult:
    objects = layout.template_objects()
    pod = bench.pods.pod("bench-e", "app-0", "bench-app", objects, bench.volumes / "e")
    title = f"warm rotation poll of templates: 1 pod, {len(objects)} template objects over a's 3 KV paths"
    return _sequential_polls(bench, ScenarioResult("e", title), pod, bench.options.polls)


def dynamic_poll(bench: Bench) -> ScenarioResult:
    objects = layout.dynamic_objects()
    title = f"warm poll with a database credential and a PKI cert: 1 pod, {len(objects)} objects"
    result = ScenarioResult("b", title)
    if bench.backends.postgres is None:
        result.skipped = f"PostgreSQL unavailable: {bench.backends.why_no_database}"
        return result
    pod = bench.pods.pod("bench-b", "app-0", "bench-app", objects, bench.volumes / "b")
    result = _sequential_polls(bench, result, pod, bench.options.polls_dynamic)
    # Outside the window: this LIST is the harness's own request.
    result.extra["db_leases_alive_after"] = count_database_leases(bench.backends.root)
    return result


def _sequential_polls(bench: Bench, result: ScenarioResult, pod: Pod, polls: int) -> ScenarioResult:
    warmup = [bench.driver.mount(pod, write=True) for _ in range(bench.options.warmup)]
    mark = bench.probe.begin()
    samples = [bench.driver.mount(pod, write=True) for _ in range(polls)]
    bench.probe.finish(result, mark, samples, sequential=True)
    result.extra["warmup_mounts"] = len(warmup)
    result.extra["warmup_errors"] = sum(1 for s in warmup if s.error)
    result.extra["volume_rewrites"] = sum(1 for s in samples if s.changed)
    result.extra["version_changes"] = _version_changes([*warmup[-1:], *samples])
    return result


def _version_changes(samples: list[MountSample]) -> int:
    """Polls whose object versions differ from the previous successful poll's."""
    changes = 0
    previous: tuple[tuple[str, str], ...] | None = None
    for sample in samples:
        if sample.error is not None:
            continue
        if previous is not None and sample.versions != previous:
            changes += 1
        previous = sample.versions
    return changes


def storm(bench: Bench) -> ScenarioResult:
    count, per_pod = bench.options.storm_pods, bench.options.storm_objects
    objects = layout.storm_objects(per_pod)
    title = f"mount storm: {count} pods x {per_pod} objects at once"
    pods = [
        bench.pods.pod(f"bench-storm-{i % 10}", f"storm-{i:04d}", f"bench-web-{i % 11}", objects, None)
        for i in range(count)
    ]
    samples: list[MountSample | None] = [None] * count
    gate = threading.Barrier(count + 1)

    def arrive(index: int) -> None:
        try:
            gate.wait(timeout=_JOIN_SECONDS)
        except threading.BrokenBarrierError:
            return
        samples[index] = bench.driver.mount(pods[index])

    threads = [
        threading.Thread(target=arrive, args=(i,), name=f"storm-{i}", daemon=True) for i in range(count)
    ]
    for thread in threads:
        thread.start()
    mark = bench.probe.begin()
    released = time.perf_counter()
    gate.wait(timeout=_JOIN_SECONDS)
    deadline = time.monotonic() + _JOIN_SECONDS
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    done = [s for s in samples if s is not None]
    completion = max((s.end for s in done), default=released) - released
    result = bench.probe.finish(
        ScenarioResult("c", title), mark, done, sequential=False, wall_seconds=completion
    )
    result.extra["storm_completion_s"] = round(completion, 4)
    result.extra["not_finished"] = count - len(done)
    return result


def churn(bench: Bench) -> ScenarioResult:
    count, workers = bench.options.pods, bench.options.pods_concurrency
    objects = layout.static_objects()
    title = f"{count} distinct pods over time, every other one mounting twice ({workers} at a time)"
    # Tokens are minted here, before the window, so the figures are the provider's.
    pods = [
        bench.pods.pod(f"bench-team-{i % 20}", f"churn-{i:05d}", f"bench-svc-{i % 100}", objects, None)
        for i in range(count)
    ]
    schedule = iter(_churn_schedule(count))
    lock = threading.Lock()
    samples: list[MountSample] = []

    def work() -> None:
        while True:
            with lock:
                index = next(schedule, None)
            if index is None:
                return
            sample = bench.driver.mount(pods[index])
            with lock:
                samples.append(sample)

    threads = [threading.Thread(target=work, name=f"churn-{i}", daemon=True) for i in range(workers)]
    mark = bench.probe.begin()
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + max(_JOIN_SECONDS, count * 2.0)
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    with lock:
        done = list(samples)
    result = bench.probe.finish(ScenarioResult("d", title), mark, done, sequential=workers == 1)
    result.extra["distinct_pods"] = count
    return result


def _churn_schedule(count: int) -> Iterator[int]:
    """Pod indexes in Mount order: each pod on arrival; even ones again REMOUNT_AFTER_PODS arrivals later."""
    for index in range(count):
        yield index
        earlier = index - REMOUNT_AFTER_PODS
        if earlier >= 0 and earlier % 2 == 0:
            yield earlier
    tail_start = max(0, count - REMOUNT_AFTER_PODS)
    yield from (i for i in range(tail_start, count) if i % 2 == 0)


SCENARIOS: dict[str, Scenario] = {
    "a": warm_poll,
    "b": dynamic_poll,
    "c": storm,
    "d": churn,
    "e": template_poll,
}
