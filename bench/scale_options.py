"""The scale benchmark's settings: modes, sizes, `--quick` and their limits (pure).

A mode is a set of SecretProviderClass parameters added to every pod's SPC; the bench
only passes them through, so a provider that ignores them measures like `plain`.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, replace

from bench.options import DEFAULT_PROVIDER_CMD, OptionError, parse_numbers

__all__ = ["ALL_MODES", "OptionError", "ScaleOptions", "mode_parameters", "parse_modes", "parse_pods"]

ALL_MODES = ("plain", "shared", "refresh", "shared+refresh")

# Upper bounds keep a typo from starting a run that exhausts threads, memory or the afternoon.
MAX_NODES = 16
MAX_PODS_PER_NODE = 1_000
MAX_WORKLOADS = 500
MAX_CONCURRENCY = 32

_GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")


@dataclass(frozen=True)
class ScaleOptions:
    """Everything one scale run is parameterised by."""

    nodes: int = 2
    pods: tuple[int, ...] = (10, 50)  # per node, one step each
    workloads: int = 4  # service accounts, each with replicas on every node
    poll_interval: float = 10.0  # seconds between two Mounts of one pod's volume
    duration: float = 30.0  # the measured window of each step, after one poll interval of warm-up
    modes: tuple[str, ...] = ALL_MODES
    refresh_interval: str = "5m"  # the refreshInterval parameter of the refresh modes
    concurrency: int = 4  # Mounts in flight at once per node, as the kubelet's parallel publishes
    provider_cmd: str = DEFAULT_PROVIDER_CMD
    provider_log_dir: str | None = None
    json_path: str | None = None
    quick: bool = False
    python: str = sys.executable

    def quickened(self) -> ScaleOptions:
        """The `--quick` sizes: every mode, one small step each, about a minute in all."""
        return replace(
            self,
            quick=True,
            pods=(min(self.pods[0], 5),),
            workloads=min(self.workloads, 2),
            poll_interval=min(self.poll_interval, 3.0),
            duration=min(self.duration, 6.0),
        )

    def validate(self) -> None:
        """Raise `OptionError` naming the flag whose value the run cannot use."""
        limits: dict[str, tuple[float, float, float]] = {
            "--nodes": (self.nodes, 1, MAX_NODES),
            "--workloads": (self.workloads, 1, MAX_WORKLOADS),
            "--poll-interval": (self.poll_interval, 0.5, 3_600),
            "--duration": (self.duration, 1, 3_600),
            "--concurrency": (self.concurrency, 1, MAX_CONCURRENCY),
        }
        for pods in self.pods:
            limits[f"--pods ({pods})"] = (pods, 1, MAX_PODS_PER_NODE)
        for flag, (value, low, high) in limits.items():
            if not low <= value <= high:
                raise OptionError(f"{flag} must be between {low:g} and {high:g}, got {value:g}")
        if not _GO_DURATION.match(self.refresh_interval):
            raise OptionError(
                f"--refresh-interval takes a Go duration such as 5m or 90s, got {self.refresh_interval!r}"
            )


def parse_modes(text: str) -> tuple[str, ...]:
    """`refresh,plain` -> ("plain", "refresh"): a subset of ALL_MODES, in its order."""
    wanted = {part.strip().lower() for part in text.split(",") if part.strip()}
    unknown = sorted(wanted - set(ALL_MODES))
    if unknown or not wanted:
        raise OptionError(f"--modes takes a comma-separated subset of {','.join(ALL_MODES)}, got {text!r}")
    return tuple(mode for mode in ALL_MODES if mode in wanted)


def parse_pods(text: str) -> tuple[int, ...]:
    """`10,50,100` -> (10, 50, 100): pods per node, one step each, in the order given."""
    return parse_numbers(text, int, "--pods", "pod counts per node")


def mode_parameters(mode: str, refresh_interval: str) -> dict[str, str]:
    """The SecretProviderClass parameters `mode` adds to every pod's SPC."""
    parameters: dict[str, str] = {}
    if mode in ("shared", "shared+refresh"):
        parameters["credentialScope"] = "serviceAccount"
    if mode in ("refresh", "shared+refresh"):
        parameters["refreshInterval"] = refresh_interval
    return parameters
