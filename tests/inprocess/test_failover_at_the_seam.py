"""Failover between a target's nodes, in-process: the provider composed over three fake nodes.

Each node is a FakeVault's protocol behind its own transport (the factory is called
per node address), in one of the states OpenBao 2.x was seen in on a raft cluster:
serving, down (the transport's own "connection refused"), sealed (503), a standby
that has lost its leader (500 "local node not active ..." for reads, 307 to the old
leader for logins). Nothing in the provider is patched.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator

import grpc
import pytest
from fake_vault import FakeVault, answer
from inprocess_kit import HMAC_KEY, NAMESPACE, Call, mount_request, serving, spc

from provider.errors import DeadlineExceeded, ProviderError, VaultUnavailable
from provider.serve.composition import Provider, build_provider
from provider.settings import parse_settings
from provider.vault.target import VaultTarget
from provider.vault.transport import HttpRequest, HttpResponse, Transport, http11_transports

N1, N2, N3 = "http://n1.test:8200", "http://n2.test:8200", "http://n3.test:8200"
LOGIN = "/v1/auth/kubernetes/login"
KV = "/v1/secret/data/app"
ONE_KEY = spc("- objectName: a\n  secretPath: secret/data/app\n  secretKey: password\n")
LEADERLESS = "local node not active but active cluster node not found"


class NodeTransport:
    """One node's transport: its state decides the answer; "up" is the shared FakeVault's protocol."""

    def __init__(self, cluster: FakeCluster, address: str) -> None:
        self._cluster = cluster
        self._address = address

    def send(self, request: HttpRequest, timeout: float) -> HttpResponse:
        return self._cluster.answer(self._address, request)

    def close(self) -> None:
        """Nothing to release."""


class FakeCluster:
    """Three nodes sharing one FakeVault's data; `state[address]` says how each answers."""

    def __init__(self, vault: FakeVault) -> None:
        self.vault = vault
        self.state = {N1: "up", N2: "up", N3: "up"}
        self.redirect_to = ""  # where a leaderless standby sends logins (the old leader)
        self.asked: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def transports(self, target: VaultTarget) -> Transport:
        assert target.addresses == (target.address,), "a transport is made per node"
        return NodeTransport(self, target.address)

    def answer(self, address: str, request: HttpRequest) -> HttpResponse:
        with self._lock:
            self.asked.append((address, request.path))
            state = self.state[address]
        if state == "down":
            # What the real transport raises for a refused connection.
            raise VaultUnavailable(f"cannot reach Vault at {address}: Connection refused", retryable=True)
        if state == "sealed":
            return answer(503, {"errors": ["Vault is sealed"]})
        if state == "redirecting":
            return answer(307, None, {"Location": self.redirect_to + request.path})
        if state == "leaderless":
            if request.path == LOGIN and self.redirect_to:
                return answer(307, None, {"Location": self.redirect_to + request.path})
            return answer(500, {"errors": [LEADERLESS]})
        return self.vault.handle(request)

    def nodes_asked(self, path: str) -> list[str]:
        return [address for address, asked in self.asked if asked == path]


@pytest.fixture
def cluster() -> FakeCluster:
    vault = FakeVault()
    vault.admit("app", f"{NAMESPACE}/app")
    vault.put("app", {"password": "correct-horse"})
    return FakeCluster(vault)


def build(cluster: FakeCluster, *flags: str, address: str = f"{N1},{N2},{N3}") -> Provider:
    settings = parse_settings([f"-vault-addr={address}", "-health-addr=", *flags], environ={})
    return build_provider(settings, HMAC_KEY, None, cluster.transports)


@pytest.fixture
def provider(cluster: FakeCluster) -> Iterator[Provider]:
    built = build(cluster)
    yield built
    built.close()


def mounts(provider: Provider, count: int = 1, timeout: float = 10.0, **parameters: str) -> list[Call]:
    with serving(provider) as call:
        return [call(mount_request({**ONE_KEY, **parameters}), timeout) for _ in range(count)]


def failovers(provider: Provider) -> dict[str, float]:
    return {
        sample.labels["reason"]: sample.value
        for metric in provider.metrics.vault_failovers.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    }


def test_a_healthy_first_node_is_the_only_one_asked(cluster: FakeCluster, provider: Provider) -> None:
    """Nothing extra for a healthy cluster: every request goes to the first node, none fails over."""
    assert [call.code for call in mounts(provider, 3)] == [grpc.StatusCode.OK] * 3
    assert {address for address, _ in cluster.asked} == {N1}
    assert failovers(provider) == {}


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        pytest.param("down", "unreachable", id="refused"),
        pytest.param("sealed", "sealed", id="sealed-503"),
        pytest.param("leaderless", "standby", id="standby-without-leader-500"),
    ],
)
def test_first_node_failing_over_then_sticky(
    cluster: FakeCluster, provider: Provider, state: str, reason: str
) -> None:
    """A node that cannot serve is passed over once; later Mounts start at the node that worked."""
    cluster.state[N1] = state
    calls = mounts(provider, 3)
    assert [call.code for call in calls] == [grpc.StatusCode.OK] * 3
    assert calls[0].response.files[0].contents == b"correct-horse"
    # Each Mount presents a new JWT and logs in; only the first one asks n1.
    assert cluster.nodes_asked(LOGIN) == [N1, N2, N2, N2]
    assert cluster.nodes_asked(KV) == [N2, N2, N2]
    assert failovers(provider) == {reason: 1.0}


def test_sticky_survives_the_first_node_coming_back(cluster: FakeCluster, provider: Provider) -> None:
    """Staying on the node that works: a recovered n1 is not asked while n2 keeps working."""
    cluster.state[N1] = "down"
    mounts(provider)
    cluster.state[N1] = "up"
    cluster.asked.clear()
    mounts(provider)
    assert {address for address, _ in cluster.asked} == {N2}


def test_rate_limiting_is_not_failed_over(cluster: FakeCluster, provider: Provider) -> None:
    """429 is the cluster's answer, not a node's state: retried on the same node, never passed on."""
    cluster.vault.fail_next(LOGIN, answer(429, {"errors": ["rate limit quota exceeded"]}))
    assert mounts(provider)[0].code == grpc.StatusCode.OK
    assert cluster.nodes_asked(LOGIN) == [N1, N1]
    assert failovers(provider) == {}


def test_rate_limiting_everywhere_keeps_the_attempt_count(cluster: FakeCluster, provider: Provider) -> None:
    """A 429 that does not pass is retried as with one address (3 attempts), not until the deadline."""
    cluster.vault.fail_next(LOGIN, *[answer(429, {"errors": ["rate limit quota exceeded"]})] * 5)
    call = mounts(provider)[0]
    assert call.code == grpc.StatusCode.UNAVAILABLE
    assert call.details.endswith(
        f"Vault at {N1} (from the -vault-addr flag) is rate limiting requests (429): rate limit quota "
        "exceeded (after 3 attempts)"
    )
    assert cluster.nodes_asked(LOGIN) == [N1, N1, N1]


def test_a_change_of_node_is_logged_once(
    cluster: FakeCluster, provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    """Moving to another node is one warning naming both nodes; staying there logs nothing more."""
    cluster.state[N1] = "down"
    with caplog.at_level(logging.WARNING, logger="provider.vault"):
        mounts(provider, 2)
    assert [record.getMessage() for record in caplog.records if record.name == "provider.vault"] == [
        f"Vault {N1},{N2},{N3} (from the -vault-addr flag): now using node {N2} instead of {N1}"
    ]


def test_login_redirect_to_a_listed_node_is_followed(cluster: FakeCluster, provider: Provider) -> None:
    """A leaderless standby's 307 to another node of the list is followed there, with the same request."""
    cluster.state[N1] = "leaderless"
    cluster.redirect_to = N3
    assert mounts(provider)[0].code == grpc.StatusCode.OK
    assert cluster.nodes_asked(LOGIN) == [N1, N3]
    assert cluster.nodes_asked(KV) == [N3]  # the node that served becomes the sticky one


def test_redirect_to_a_dead_leader_fails_over(cluster: FakeCluster, provider: Provider) -> None:
    """During an election standbys redirect logins to the dead leader: followed, refused, next node."""
    cluster.state.update({N1: "down", N2: "leaderless"})
    cluster.redirect_to = N1
    assert mounts(provider)[0].code == grpc.StatusCode.OK
    assert cluster.nodes_asked(LOGIN) == [N1, N2, N1, N3]
    assert failovers(provider) == {"unreachable": 2.0}


def test_redirect_outside_the_allowed_addresses_is_refused(cluster: FakeCluster) -> None:
    """A 307 anywhere else is not followed (no token sent there): FAILED_PRECONDITION naming both."""
    cluster.state[N1] = "leaderless"
    cluster.redirect_to = "http://elsewhere.test:8200"
    provider = build(cluster, address=N1)
    try:
        call = mounts(provider)[0]
    finally:
        provider.close()
    assert call.code == grpc.StatusCode.FAILED_PRECONDITION
    assert call.details == (
        f'login to Vault at {N1} (from the -vault-addr flag) with role "app" on auth mount "kubernetes" '
        "as service account team-a/app failed: "
        f"Vault at {N1} (from the -vault-addr flag) redirected the request (307) to elsewhere.test:8200, "
        "which is not one of its addresses or -allowed-vault-addresses; list the cluster's nodes in the "
        "address, or put a load balancer in front of Vault"
    )
    assert {address for address, _ in cluster.asked} == {N1}


def test_redirect_into_allowed_vault_addresses_is_followed(cluster: FakeCluster) -> None:
    """-allowed-vault-addresses lists where else a redirect may lead."""
    cluster.state[N1] = "redirecting"
    cluster.redirect_to = N2
    provider = build(cluster, f"-allowed-vault-addresses={N2}", address=N1)
    try:
        assert mounts(provider)[0].code == grpc.StatusCode.OK
    finally:
        provider.close()
    assert cluster.nodes_asked(LOGIN) == [N1, N2]
    assert cluster.nodes_asked(KV) == [N1, N2]  # not a node of the list: never sticky


def test_redirect_loop_is_bounded(cluster: FakeCluster, provider: Provider) -> None:
    """Nodes that keep redirecting to each other end in an error after a few hops, not a loop."""
    cluster.state.update({N1: "leaderless", N2: "leaderless", N3: "leaderless"})
    cluster.redirect_to = N1
    call = mounts(provider, timeout=2.0)[0]
    assert call.code == grpc.StatusCode.FAILED_PRECONDITION
    assert call.details.endswith(
        f"Vault at {N1} (from the -vault-addr flag) redirected POST {LOGIN} more than 3 times; "
        "list the cluster's nodes, or put a load balancer in front of Vault"
    )


def test_every_node_down_names_every_node(cluster: FakeCluster, provider: Provider) -> None:
    """When no node can serve, rounds go on until the deadline; the error names each node's failure."""
    cluster.state.update({N1: "down", N2: "sealed", N3: "down"})
    call = mounts(provider, timeout=2.5)[0]
    assert call.code == grpc.StatusCode.UNAVAILABLE
    flag = "(from the -vault-addr flag)"
    assert call.details.startswith(
        f'login to Vault at {N1},{N2},{N3} {flag} with role "app" on auth mount "kubernetes" as service '
        f"account team-a/app failed: no Vault node could serve the request: cannot reach Vault at {N1}: "
        f"Connection refused; Vault at {N2} {flag} is sealed or unavailable (503): Vault is sealed; "
        f"cannot reach Vault at {N3}: Connection refused (after "
    )
    rounds = Counter(cluster.nodes_asked(LOGIN))
    assert rounds[N1] == rounds[N2] == rounds[N3] > 3  # more rounds than RetryPolicy.attempts


def test_a_round_waits_for_an_election(cluster: FakeCluster, provider: Provider) -> None:
    """Every node failing for a while (an election) is waited out within the deadline."""
    cluster.state.update({N1: "down", N2: "leaderless", N3: "leaderless"})
    cluster.redirect_to = N1
    timer = threading.Timer(1.2, lambda: cluster.state.update({N3: "up"}))
    timer.start()
    try:
        call = mounts(provider, timeout=8.0)[0]
    finally:
        timer.cancel()
    assert call.code == grpc.StatusCode.OK
    assert cluster.nodes_asked(KV) == [N3]


@pytest.mark.parametrize(
    ("address", "bound"),
    [pytest.param(f"{N1},{N2}", 2.0, id="several-bounded"), pytest.param(N1, None, id="one-unbounded")],
)
def test_connect_is_bounded_only_with_other_nodes_to_ask(
    cluster: FakeCluster, address: str, bound: float | None
) -> None:
    """With several nodes each connect gets 2 s, so a node that drops packets cannot eat the deadline."""
    seen: list[float | None] = []

    def transports(target: VaultTarget) -> Transport:
        inner = cluster.transports(target)

        class Recording:
            def send(self, request: HttpRequest, timeout: float) -> HttpResponse:
                seen.append(request.connect_timeout)
                return inner.send(request, timeout)

            def close(self) -> None:
                inner.close()

        return Recording()

    settings = parse_settings([f"-vault-addr={address}", "-health-addr="], environ={})
    provider = build_provider(settings, HMAC_KEY, None, transports)
    try:
        assert mounts(provider)[0].code == grpc.StatusCode.OK
    finally:
        provider.close()
    assert seen
    assert set(seen) == {bound}


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose listen queue is full, so a new connect hangs as with a node that drops packets."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.05)
    yield port
    for sock in [*fillers, listener]:
        sock.close()


@pytest.mark.parametrize(
    ("bound", "kind", "message"),
    [
        pytest.param(
            0.3, VaultUnavailable, "cannot reach Vault at {node}: no connection within 0.3 s", id="bounded"
        ),
        pytest.param(
            None,
            DeadlineExceeded,
            "Vault at {node} did not answer within the Mount's deadline",
            id="unbounded",
        ),
    ],
)
def test_the_real_transport_bounds_a_hanging_connect(
    unanswered_port: int, bound: float | None, kind: type[ProviderError], message: str
) -> None:
    """The real transport: a bounded connect that runs out is a node not answering, not a spent deadline."""
    target = VaultTarget(f"http://127.0.0.1:{unanswered_port}", "flag")
    transport = http11_transports(pool_size=1)(target)
    started = time.monotonic()
    try:
        with pytest.raises(ProviderError) as caught:
            transport.send(HttpRequest("GET", "/v1/sys/health", connect_timeout=bound), 0.6)
    finally:
        transport.close()
    assert type(caught.value) is kind
    assert str(caught.value) == message.format(node=target.describe())
    assert caught.value.retryable is (bound is not None)
    assert time.monotonic() - started < (0.5 if bound else 1.0)
