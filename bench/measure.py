"""Turn one scenario's Mount samples and the counters around them into a `ScenarioResult`.

`Probe.begin()` is called when the measured part starts (after any warm-up) and
`Probe.finish()` when it ends: the audit log lines, proxy records, CPU time and
Kubernetes API calls between the two belong to the scenario.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.audit import AuditLog
from bench.provider_process import ProviderProcess
from bench.proxy import TimingProxy
from bench.stats import Summary, overheads, summarize
from bench.workload import MountSample

__all__ = ["Probe", "ScenarioResult"]

# The audit device writes before it answers, but give a background write a moment to land.
_SETTLE_SECONDS = 0.2
_ERROR_EXAMPLES = 3


@dataclass
class ScenarioResult:
    """What one scenario measured. Counts are totals; `per_mount` divides by `mounts`."""

    key: str
    title: str
    mounts: int = 0
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    latency: Summary | None = None
    overhead: Summary | None = None
    vault_requests: Counter[str] = field(default_factory=Counter)
    other_requests: Counter[str] = field(default_factory=Counter)  # "operation path" of "other"
    new_objects: Counter[str] = field(default_factory=Counter)
    vault_errors: int = 0
    cpu_seconds: float = 0.0
    rss_kib: int = 0
    kube_api_calls: int | None = None
    extra: dict[str, float | int | str] = field(default_factory=dict)
    skipped: str | None = None

    def per_mount(self, count: int) -> float:
        return count / self.mounts if self.mounts else 0.0

    @property
    def mounts_per_second(self) -> float:
        return self.mounts / self.wall_seconds if self.wall_seconds > 0 else 0.0


@dataclass
class _Mark:
    wall: float
    cpu: float
    kube_calls: int | None


class Probe:
    """Reads the audit log, the proxy, /proc and (optionally) the Kubernetes API call count."""

    def __init__(
        self,
        audit: AuditLog,
        proxy: TimingProxy | None,
        provider: ProviderProcess,
        kube_calls: Callable[[], int] | None,
    ) -> None:
        self._audit = audit
        self._proxy = proxy
        self._provider = provider
        self._kube_calls = kube_calls

    def begin(self) -> _Mark:
        """Start a window: everything recorded so far belongs to no scenario."""
        time.sleep(_SETTLE_SECONDS)
        self._audit.take()
        if self._proxy is not None:
            self._proxy.drain()
        kube = self._kube_calls() if self._kube_calls is not None else None
        return _Mark(wall=time.perf_counter(), cpu=self._provider.sample().cpu_seconds, kube_calls=kube)

    def finish(
        self,
        result: ScenarioResult,
        mark: _Mark,
        samples: Sequence[MountSample],
        *,
        sequential: bool,
        wall_seconds: float | None = None,
    ) -> ScenarioResult:
        """Fill `result` from the window opened by `mark`.

        `wall_seconds` overrides the window's length (the storm measures from the release
        of the first Mount). The overhead figure is computed only for `sequential` runs.
        """
        end = time.perf_counter()
        sample = self._provider.sample()
        time.sleep(_SETTLE_SECONDS)
        counts = self._audit.take()
        records = self._proxy.drain() if self._proxy is not None else None
        self._provider.check_alive()

        result.mounts = len(samples)
        failed = [s for s in samples if s.error is not None]
        result.errors = len(failed)
        result.error_examples = list(dict.fromkeys(s.error for s in failed if s.error))[:_ERROR_EXAMPLES]
        result.wall_seconds = wall_seconds if wall_seconds is not None else end - mark.wall
        result.latency = summarize([s.seconds for s in samples if s.error is None])
        if sequential and records is not None:
            succeeded = [(s.start, s.end) for s in samples if s.error is None]
            result.overhead = summarize(overheads(succeeded, [(r.start, r.end) for r in records]))
        result.vault_requests = counts.requests
        result.other_requests = counts.other
        result.new_objects = counts.new
        result.vault_errors = counts.errors
        result.cpu_seconds = sample.cpu_seconds - mark.cpu
        result.rss_kib = sample.rss_kib
        if self._kube_calls is not None and mark.kube_calls is not None:
            result.kube_api_calls = self._kube_calls() - mark.kube_calls
        if records is not None:
            result.extra["proxied_requests"] = len(records)
        return result
