"""The metrics the alerts and the dashboard read besides the request counters: lease renewals by
result, kept secrets and cached tokens at scrape time, readiness (docs/runbooks.md).

Renewals run a real LeaseKeeper and VaultClient over a scripted transport, with a clock the
test moves past the renewal point; the cache gauges come from a provider composed by
`build_provider` over the FakeVault, read from its exposition as Prometheus would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from fake_vault import FakeVault, MockTransport, answer
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from inprocess_kit import NAMESPACE, composed, config_for, mount_request, spc
from prometheus_client.parser import text_string_to_metric_families

from provider.errors import ProviderError, VaultUnavailable
from provider.mount.lease_cache import LeaseCache, LeaseKey
from provider.mount.leases import LeaseKeeper
from provider.request.vault_request import VaultRequest
from provider.serve.composition import Provider
from provider.serve.health import HealthServer
from provider.serve.metrics import Metrics
from provider.vault.client import VaultClient
from provider.vault.deadline import Deadline
from provider.vault.retry import RetryPolicy
from provider.vault.session import VaultSession
from provider.vault.target import VaultTarget
from provider.vault.transport import HttpRequest, HttpResponse

TARGET = VaultTarget("https://vault.test:8200", "flag")
CREDS = VaultRequest("GET", "/v1/database/creds/app")
KEY = LeaseKey(TARGET.address, "", "kubernetes", "app", "entity-1", "pod:uid-1", CREDS)
FAST = RetryPolicy(attempts=1, base=0.001, cap=0.001)
ISSUED = answer(200, {"lease_id": "database/creds/app/1", "lease_duration": 600, "renewable": True,
                      "data": {"username": "u", "password": "p"}})  # fmt: skip
READY = ("vault_csi_provider_ready", ())
DB_OBJECTS = spc(
    """
    - objectName: db-user
      secretPath: database/creds/app
      secretKey: username
    """
)


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, parsed from the text a scrape gets."""
    found = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def renewal_results(renew_answer: HttpResponse | Exception) -> dict[str, float]:
    """Issue a lease, pass its renewal point, poll once with Vault answering the renewal so."""
    renewals: list[HttpRequest] = []

    def handler(request: HttpRequest) -> HttpResponse:
        if request.path != "/v1/sys/leases/renew":
            return ISSUED
        renewals.append(request)
        if isinstance(renew_answer, Exception):
            raise renew_answer
        return renew_answer

    metrics = Metrics()
    clock = Clock()
    keeper = LeaseKeeper(LeaseCache(16, clock), metrics, clock=clock)
    client = VaultClient(lambda target: MockTransport(handler), metrics, FAST)
    session = VaultSession(client, TARGET, Deadline(5), "a-token")
    assert keeper.fetch(KEY, session).source == "new"
    clock.now += 500  # past 2/3 of the 600 s lease
    with contextlib.suppress(ProviderError):
        keeper.fetch(KEY, session)
    assert len(renewals) == 1, "the second poll did not ask Vault to renew"
    return {
        labels[0][1]: value
        for (name, labels), value in samples(metrics).items()
        if name == "vault_csi_provider_lease_renewals_total"
    }


@pytest.mark.parametrize(
    ("renew_answer", "expected"),
    [
        pytest.param(
            answer(200, {"lease_duration": 600}),
            {"renewed": 1.0},
            id="extended",
        ),
        pytest.param(
            answer(200, {"lease_duration": 60}),
            {"capped": 1.0},
            id="capped-by-max-ttl",
        ),
        pytest.param(answer(400, {"errors": ["lease not found"]}), {"refused": 1.0}, id="refused"),
        pytest.param(VaultUnavailable("cannot reach Vault", retryable=True), {"error": 1.0}, id="no-answer"),
    ],
)
def test_each_lease_renewal_is_counted_by_its_result(
    renew_answer: HttpResponse | Exception, expected: dict[str, float]
) -> None:
    """Renewed, capped (Vault grants less than is left), refused (4xx) and no answer are told apart."""
    results = renewal_results(renew_answer)
    assert set(results) == {"renewed", "refused", "capped", "error"}, (
        "every result is exported from the start"
    )
    assert {result: value for result, value in results.items() if value} == expected


@pytest.fixture
def provider() -> Iterator[Provider]:
    fake = FakeVault()
    fake.admit("app", f"{NAMESPACE}/app")
    with composed(fake) as built:
        yield built


def test_kept_secrets_and_cached_tokens_are_read_at_scrape_time(provider: Provider) -> None:
    """Before any Mount both gauges are 0; after one Mount with a database credential the scrape shows
    one token and one kept lease, and no certificate or static answer."""
    before = samples(provider.metrics)
    assert before[("vault_csi_provider_cached_tokens", ())] == 0
    assert before[("vault_csi_provider_kept_secrets", (("kind", "lease"),))] == 0

    config = config_for(mount_request(DB_OBJECTS))
    provider.mounter.mount(config, Deadline(10))

    after = samples(provider.metrics)
    assert after[("vault_csi_provider_cached_tokens", ())] == 1
    kept = {labels[0][1]: value for (name, labels), value in after.items()
            if name == "vault_csi_provider_kept_secrets"}  # fmt: skip
    assert kept == {"lease": 1.0, "certificate": 0.0, "static": 0.0}


def test_ready_follows_the_probe_and_the_drain(tmp_path: Path) -> None:
    """ready is what /health/ready would answer at scrape time: 1 while our gRPC server answers
    SERVING over the socket, 0 once the drain begins, 0 with no server behind the socket."""
    socket_path = tmp_path / "vault.sock"
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"unix://{socket_path}")
    server.start()
    metrics = Metrics()
    probes = HealthServer("127.0.0.1:0", socket_path, metrics)
    lonely = Metrics()
    nobody = HealthServer("127.0.0.1:0", tmp_path / "absent.sock", lonely)
    try:
        serving = samples(metrics)[READY]
        probes.draining()
        drained = samples(metrics)[READY]
        absent = samples(lonely)[READY]
    finally:
        probes.stop()
        nobody.stop()
        server.stop(grace=0)
    assert (serving, drained, absent) == (1.0, 0.0, 0.0)


def test_new_metrics_carry_no_pod_or_path_labels(provider: Provider) -> None:
    """The metrics added for the alerts have bounded label names only (never a pod, a path or a value),
    after a Mount has filled the caches."""
    provider.mounter.mount(config_for(mount_request(DB_OBJECTS)), Deadline(10))
    allowed = {
        "vault_csi_provider_lease_renewals": {"result"},
        "vault_csi_provider_kept_secrets": {"kind"},
        "vault_csi_provider_cached_tokens": set(),
        "vault_csi_provider_ready": set(),
    }
    seen = {}
    for family in text_string_to_metric_families(provider.metrics.exposition().decode()):
        if family.name in allowed:
            seen[family.name] = set().union(*(set(sample.labels) for sample in family.samples))
    assert {name: labels <= allowed[name] for name, labels in seen.items()} == dict.fromkeys(allowed, True)
