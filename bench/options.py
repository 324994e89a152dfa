"""The benchmark's settings: defaults, `--quick`, limits and the provider command template (pure).

Nothing here touches a process, a socket or a file; `cli` parses flags into `Options`
and `run` reads them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

__all__ = [
    "ALL_SCENARIOS",
    "DEFAULT_PROVIDER_CMD",
    "KUBE_KIT_PLACEHOLDERS",
    "OptionError",
    "Options",
    "expand_template",
    "parse_env",
    "parse_numbers",
    "parse_scenarios",
    "parse_spacings",
]

ALL_SCENARIOS = ("a", "b", "c", "d", "e")

# `{python}` is this interpreter, so the provider runs with the same packages as the harness.
DEFAULT_PROVIDER_CMD = (
    "{python} -m provider -endpoint={socket} -vault-addr={vault_addr} -hmac-key-file={key_file} "
    "-health-addr=127.0.0.1:0 -log-level=info"
)
# Placeholders that only exist when the harness provides a Kubernetes API for the provider itself.
KUBE_KIT_PLACEHOLDERS = frozenset({"kube_host", "kube_port", "sa_dir"})

# Upper bounds keep a typo from starting a run that exhausts threads, memory or the afternoon.
MAX_POLLS = 100_000
MAX_STORM_PODS = 1_000
MAX_PODS = 20_000
MAX_CONCURRENCY = 64

N = TypeVar("N", int, float)

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


class OptionError(ValueError):
    """A flag value the benchmark cannot run with; the message names the flag."""


@dataclass(frozen=True)
class Options:
    """Everything one benchmark run is parameterised by."""

    scenarios: tuple[str, ...] = ALL_SCENARIOS
    warmup: int = 3
    polls: int = 200  # scenario a
    polls_dynamic: int = 100  # scenario b
    storm_pods: int = 110  # scenario c
    storm_objects: int = 10
    pods: int = 1_000  # scenario d
    pods_concurrency: int = 4
    provider_cmd: str = DEFAULT_PROVIDER_CMD
    provider_env: tuple[tuple[str, str], ...] = ()
    proxy: bool = True
    kube_kit: bool = False
    # Network distance: each Vault request (through the proxy) and each call to the kube kit's
    # apiserver waits this long before it is served, as if across a network (`--network-rtt-ms`).
    network_rtt_ms: float = 0.0
    json_path: str = "bench-results.json"
    provider_log: str | None = None
    # Side by side (`--compare-cmd`): a second provider, polled interleaved with the first.
    compare_cmd: str | None = None
    compare_env: tuple[tuple[str, str], ...] = ()
    compare_spacings_ms: tuple[float, ...] = (0.0, 250.0)
    # More interleaved passes, their polls sent by the driver's own Go client (`go_timer`).
    compare_go_spacings_ms: tuple[float, ...] = ()
    compare_log: str | None = None
    quick: bool = False
    python: str = sys.executable

    @property
    def network_rtt_seconds(self) -> float:
        """`network_rtt_ms` in seconds, as the proxy, the kube kit and the floor take it."""
        return self.network_rtt_ms / 1000

    def quickened(self) -> Options:
        """The `--quick` sizes: every scenario, small enough for a smoke run of well under a minute."""
        return replace(
            self,
            quick=True,
            warmup=2,
            polls=min(self.polls, 20),
            polls_dynamic=min(self.polls_dynamic, 10),
            storm_pods=min(self.storm_pods, 20),
            pods=min(self.pods, 50),
        )

    def validate(self) -> None:
        """Raise `OptionError` for sizes outside the supported range."""
        limits = {
            "--warmup": (self.warmup, 0, 1_000),
            "--polls": (self.polls, 1, MAX_POLLS),
            "--polls-dynamic": (self.polls_dynamic, 1, MAX_POLLS),
            "--storm-pods": (self.storm_pods, 1, MAX_STORM_PODS),
            "--storm-objects": (self.storm_objects, 1, 100),
            "--pods": (self.pods, 1, MAX_PODS),
            "--pods-concurrency": (self.pods_concurrency, 1, MAX_CONCURRENCY),
        }
        for flag, (value, low, high) in limits.items():
            if not low <= value <= high:
                raise OptionError(f"{flag} must be between {low} and {high}, got {value}")
        for flag, spacings in (
            ("--compare-spacings-ms", self.compare_spacings_ms),
            ("--compare-go-spacings-ms", self.compare_go_spacings_ms),
        ):
            if any(not 0 <= spacing <= 10_000 for spacing in spacings):
                raise OptionError(f"{flag} must lie between 0 and 10000, got {spacings}")
        if not 0 <= self.network_rtt_ms <= 100:
            raise OptionError(f"--network-rtt-ms must lie between 0 and 100, got {self.network_rtt_ms:g}")
        if self.network_rtt_ms and not self.proxy:
            raise OptionError("--network-rtt-ms delays Vault requests in the timing proxy: drop --no-proxy")
        if self.compare_go_spacings_ms and not self.compare_cmd:
            raise OptionError("--compare-go-spacings-ms times a side-by-side pass: it needs --compare-cmd")
        names = set(_PLACEHOLDER.findall(self.provider_cmd + (self.compare_cmd or "")))
        for _, env_value in (*self.provider_env, *self.compare_env):
            names |= set(_PLACEHOLDER.findall(env_value))
        if names & KUBE_KIT_PLACEHOLDERS and not self.kube_kit:
            used = ", ".join(sorted("{" + name + "}" for name in names & KUBE_KIT_PLACEHOLDERS))
            raise OptionError(
                f"--provider-cmd/--compare-cmd and their env use {used}, which only --kube-kit provides"
            )


def parse_scenarios(text: str) -> tuple[str, ...]:
    """`a,c` -> ("a", "c"), always in the canonical order of ALL_SCENARIOS."""
    wanted = {part.strip().lower() for part in text.split(",") if part.strip()}
    unknown = sorted(wanted - set(ALL_SCENARIOS))
    if unknown or not wanted:
        raise OptionError(
            f"--scenarios takes a comma-separated subset of {','.join(ALL_SCENARIOS)}, got {text!r}"
        )
    return tuple(name for name in ALL_SCENARIOS if name in wanted)


def parse_numbers(text: str, convert: Callable[[str], N], flag: str, what: str) -> tuple[N, ...]:
    """`10,50` -> (10, 50) through `convert`; `OptionError` naming `flag` and `what` it takes otherwise."""
    try:
        numbers = tuple(convert(part) for part in text.split(",") if part.strip())
    except ValueError:
        numbers = ()
    if not numbers:
        raise OptionError(f"{flag} takes comma-separated {what}, got {text!r}")
    return numbers


def parse_spacings(text: str, flag: str = "--compare-spacings-ms") -> tuple[float, ...]:
    """`0,250` -> (0.0, 250.0): milliseconds between polls, one interleaved pass each."""
    return parse_numbers(text, float, flag, "milliseconds")


def parse_env(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """`["K=V", ...]` -> (("K", "V"), ...); the value may be empty and may contain `=`."""
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise OptionError(f"--provider-env takes KEY=VALUE, got {item!r}")
        pairs.append((key, value))
    return tuple(pairs)


def expand_template(template: str, values: Mapping[str, str]) -> str:
    """Replace `{name}` for every name in `values`; other braces are left as they are."""
    return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), template)
