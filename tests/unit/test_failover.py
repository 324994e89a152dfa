"""provider.vault.failover: when to ask the next node, where a redirect may lead, which node goes first."""

from __future__ import annotations

import threading

import pytest

from provider.errors import (
    DeadlineExceeded,
    PermissionDenied,
    ProviderError,
    ResponseTooLarge,
    VaultRejected,
    VaultUnavailable,
)
from provider.vault.failover import StickyNodes, failover_reason, redirect_base, round_error
from provider.vault.target import VaultTarget

N1, N2, N3 = "http://127.0.0.1:8201", "http://127.0.0.1:8202", "http://127.0.0.1:8203"
TARGET = VaultTarget(f"{N1},{N2},{N3}", "flag", redirect_allowed=("https://lb.example/vault",))
LOGIN = "/v1/auth/kubernetes/login"


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        pytest.param(VaultUnavailable("refused", retryable=True), "unreachable", id="no-answer"),
        pytest.param(VaultUnavailable("unknown host"), "unreachable", id="unknown-host"),
        pytest.param(VaultUnavailable("sealed", status=503, retryable=True), "sealed", id="503"),
        pytest.param(
            VaultUnavailable(
                "x", status=500, reasons="local node not active but active cluster node not found"
            ),
            "standby",
            id="500-standby-without-leader",
        ),
        pytest.param(VaultUnavailable("x", status=500, reasons="internal error"), None, id="500-other"),
        pytest.param(VaultUnavailable("rate", status=429, retryable=True), None, id="429-rate-limit"),
        pytest.param(VaultUnavailable("proxy", status=502, retryable=True), None, id="502-proxy"),
        pytest.param(VaultUnavailable("not json", status=200), None, id="odd-2xx"),
        pytest.param(PermissionDenied("denied", status=403), None, id="403"),
        pytest.param(VaultRejected("TLS failed"), None, id="tls"),
        pytest.param(DeadlineExceeded("late"), None, id="deadline"),
        pytest.param(ResponseTooLarge("big"), None, id="too-large"),
    ],
)
def test_failover_reason(error: ProviderError, reason: str | None) -> None:
    """Only a node that gave no answer, is sealed, or is a leaderless standby sends us to the next one."""
    assert failover_reason(error) == reason


@pytest.mark.parametrize(
    ("location", "base"),
    [
        pytest.param(f"{N1}{LOGIN}", N1, id="own-node"),
        pytest.param(f"http://127.0.0.1:8203{LOGIN}?x=1", N3, id="own-node-query-ignored"),
        pytest.param(f"HTTP://127.0.0.1:8202{LOGIN}", N2, id="scheme-case"),
        pytest.param(
            f"https://lb.example/vault{LOGIN}", "https://lb.example/vault", id="allowed-with-prefix"
        ),
        pytest.param(f"https://lb.example:443/vault{LOGIN}", "https://lb.example/vault", id="default-port"),
        pytest.param(f"https://lb.example{LOGIN}", None, id="prefix-missing"),
        pytest.param(f"https://127.0.0.1:8201{LOGIN}", None, id="other-scheme"),
        pytest.param(f"http://127.0.0.1:9999{LOGIN}", None, id="other-port"),
        pytest.param(f"http://evil.example:8201{LOGIN}", None, id="other-host"),
        pytest.param(f"{N1}/v1/sys/seal", None, id="other-path"),
        pytest.param(LOGIN, None, id="relative"),
        pytest.param("http://127.0.0.1:bad/v1/x", None, id="bad-port"),
        pytest.param(f"unix:///tmp/vault.sock{LOGIN}", None, id="unix"),
    ],
)
def test_redirect_base(location: str, base: str | None) -> None:
    """A redirect leads only into one of the target's nodes or an allowed address, for the same path."""
    assert redirect_base(location, TARGET, LOGIN) == base


def test_redirect_userinfo_in_location_does_not_matter() -> None:
    """The node is chosen by scheme, host and port; credentials in a Location are never used."""
    assert redirect_base(f"http://someone:pw@127.0.0.1:8202{LOGIN}", TARGET, LOGIN) == N2


def test_round_error_names_every_node() -> None:
    """A failed round is the last failure's kind with every node's words, worth retrying if any was."""
    error = round_error(
        [
            VaultUnavailable(f"cannot reach Vault at {N1}: Connection refused", retryable=True),
            VaultUnavailable(f"Vault at {N2} is sealed or unavailable (503)", status=503, retryable=True),
            VaultUnavailable(f"cannot reach Vault at {N3}: Name or service not known"),
        ]
    )
    assert type(error) is VaultUnavailable
    assert str(error) == (
        f"no Vault node could serve the request: cannot reach Vault at {N1}: Connection refused; "
        f"Vault at {N2} is sealed or unavailable (503); cannot reach Vault at {N3}: Name or service not known"
    )
    assert error.retryable


def test_round_of_unknown_hosts_is_not_retried() -> None:
    """No node resolving is not passing: no round after it."""
    assert not round_error([VaultUnavailable("a"), VaultUnavailable("b")]).retryable


def test_sticky_order() -> None:
    """The list's order until a node works; then that node first, the others after it in order."""
    sticky = StickyNodes()
    nodes = (N1, N2, N3)
    assert sticky.order("k", nodes) == [N1, N2, N3]
    sticky.worked("k", N2)
    assert sticky.order("k", nodes) == [N2, N3, N1]
    assert sticky.order("other", nodes) == [N1, N2, N3]
    sticky.worked("k", "https://not-listed")
    assert sticky.order("k", nodes) == [N1, N2, N3]


def test_sticky_is_thread_safe() -> None:
    """Many threads recording and reading at once always see a rotation of the list."""
    sticky = StickyNodes()
    nodes = (N1, N2, N3)
    rotations = [[*nodes[i:], *nodes[:i]] for i in range(3)]
    seen: list[list[str]] = []

    def work(index: int) -> None:
        for _ in range(200):
            sticky.worked("k", nodes[index % 3])
            seen.append(sticky.order("k", nodes))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(order in rotations for order in seen)
