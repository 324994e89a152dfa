"""Prometheus metrics, in a registry of their own (no process-global state between tests).

Labels carry only bounded, non-secret values: gRPC codes, request kinds, HTTP
statuses, and the SecretProviderClass namespace/name of failures. Never pod names,
secret paths, tokens or values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from provider.mount.lease_cache import KINDS, Kind

__all__ = ["Metrics"]

PREFIX = "vault_csi_provider"
MOUNT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    """Everything the provider counts; one instance per process, handed to whoever counts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # Each labelled child once: `labels()` checks and locks on every call, several times a Mount.
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}
        self.mounts = Counter(
            f"{PREFIX}_mounts", "Mount RPCs by result.", ["result", "code"], registry=self.registry
        )
        self.mount_duration = Histogram(
            f"{PREFIX}_mount_duration_seconds",
            "Mount RPC duration by result.",
            ["result", "code"],
            buckets=MOUNT_BUCKETS,
            registry=self.registry,
        )
        self.mounts_in_flight = Gauge(
            f"{PREFIX}_mounts_in_flight", "Mount RPCs being served now.", registry=self.registry
        )
        self.mount_failures = Counter(
            f"{PREFIX}_mount_failures",
            "Failed Mounts by SecretProviderClass.",
            ["spc_namespace", "spc_name", "code"],
            registry=self.registry,
        )
        self.vault_requests = Counter(
            f"{PREFIX}_vault_requests",
            "HTTP requests to Vault by kind (login, renew, lookup, revoke, mount-info, read, write) "
            "and status.",
            ["kind", "status"],
            registry=self.registry,
        )
        self.vault_failovers = Counter(
            f"{PREFIX}_vault_failovers",
            "Requests passed on to the next Vault address by why (unreachable, sealed, standby).",
            ["reason"],
            registry=self.registry,
        )
        self.logins = Counter(
            f"{PREFIX}_vault_logins", "Vault logins by result.", ["result"], registry=self.registry
        )
        # Zero from the start: a pod logs in once, and a series born at 1 shows Prometheus no increase.
        for result in ("success", "denied", "error"):
            self.logins.labels(result)
        self.cache_lookups = Counter(
            f"{PREFIX}_cache_lookups",
            "Cache lookups by cache and result.",
            ["cache", "result"],
            registry=self.registry,
        )
        self._alert_metrics()
        self._state_metrics()

    def _alert_metrics(self) -> None:
        """What the alerts and the dashboard read besides the request counters (docs/runbooks.md)."""
        self.lease_renewals = Counter(
            f"{PREFIX}_lease_renewals",
            "Renewals of kept leases by result (renewed, refused, capped by the max TTL, error: no answer).",
            ["result"],
            registry=self.registry,
        )
        # Zero from the start, so that a first refusal is an increase and the alert's ratio has a base.
        for result in ("renewed", "refused", "capped", "error"):
            self.lease_renewals.labels(result)
        self.kept_secrets = Gauge(
            f"{PREFIX}_kept_secrets",
            "Answers kept across rotation polls by kind (lease, certificate, static), at scrape time.",
            ["kind"],
            registry=self.registry,
        )
        self.cached_tokens = Gauge(
            f"{PREFIX}_cached_tokens",
            "Vault tokens in the token cache, at scrape time.",
            registry=self.registry,
        )
        self.ready = Gauge(
            f"{PREFIX}_ready",
            "1 when the gRPC server answers SERVING over its socket (what /health/ready says), else 0.",
            registry=self.registry,
        )

    def _state_metrics(self) -> None:
        """What -state-dir restored, dropped, ignored and saved."""
        self.state_restored_entries = Gauge(
            f"{PREFIX}_state_restored_entries",
            "Cache entries restored from -state-dir at start, by cache (token, lease).",
            ["cache"],
            registry=self.registry,
        )
        self.state_dropped_entries = Counter(
            f"{PREFIX}_state_dropped_entries",
            "Entries of the -state-dir file dropped at start, by reason (expired, idle, unreadable).",
            ["reason"],
            registry=self.registry,
        )
        self.state_files_ignored = Counter(
            f"{PREFIX}_state_files_ignored",
            "State files ignored at start, by reason (foreign, corrupt, truncated, version, too-big, ...).",
            ["reason"],
            registry=self.registry,
        )
        self.state_saves = Counter(
            f"{PREFIX}_state_saves",
            "Saves of the -state-dir file by result.",
            ["result"],
            registry=self.registry,
        )

    def mount_done(self, code: str, seconds: float, spc_namespace: str, spc_name: str) -> None:
        result = "success" if code == "OK" else "failure"
        self._child(self.mounts, result, code).inc()
        self._child(self.mount_duration, result, code).observe(seconds)
        if code != "OK":
            self._child(self.mount_failures, spc_namespace, spc_name, code).inc()

    def vault_request(self, kind: str, status: int | None) -> None:
        self._child(self.vault_requests, kind, str(status) if status is not None else "error").inc()

    def vault_failover(self, reason: str) -> None:
        self._child(self.vault_failovers, reason).inc()

    def login(self, result: str) -> None:
        self._child(self.logins, result).inc()

    def cache_lookup(self, cache: str, result: str) -> None:
        self._child(self.cache_lookups, cache, result).inc()

    def state_restored(self, cache: str, count: int) -> None:
        self.state_restored_entries.labels(cache).set(count)

    def state_dropped(self, reason: str, count: int) -> None:
        self.state_dropped_entries.labels(reason).inc(count)

    def state_ignored(self, reason: str) -> None:
        self.state_files_ignored.labels(reason).inc()

    def state_save(self, result: str) -> None:
        self.state_saves.labels(result).inc()

    def lease_renewal(self, result: str) -> None:
        self._child(self.lease_renewals, result).inc()

    def observe_caches(
        self, cached_tokens: Callable[[], int], kept: Callable[[], Mapping[Kind, int]]
    ) -> None:
        """Read the caches' sizes at every scrape (no bookkeeping on the Mount path)."""
        self.cached_tokens.set_function(lambda: float(cached_tokens()))
        for kind in KINDS:
            self.kept_secrets.labels(kind).set_function(_count_of(kept, kind))

    def observe_readiness(self, ready: Callable[[], bool]) -> None:
        self.ready.set_function(lambda: 1.0 if ready() else 0.0)

    def _child(self, metric: Any, *values: str) -> Any:
        key = (metric, values)
        child = self._children.get(key)
        if child is None:
            # Two threads may both get here: labels() hands both the same child.
            child = self._children[key] = metric.labels(*values)
        return child

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)


def _count_of(census: Callable[[], Mapping[Kind, int]], kind: Kind) -> Callable[[], float]:
    return lambda: float(census().get(kind, 0))
