"""Health and metrics over HTTP: probes that never ask Vault, draining, and the Mount counters.

The providers run "in a cluster" (fixtures in this directory's conftest); helpers are in `mounts`.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
import requests
from cluster_kit import (
    Launcher,
    SlowVault,
    driver_tokens,
    health_base,
    metric_samples,
    mount_once,
    probe,
)
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from harness import ProviderProcess, VaultEnv, unique
from mounts import NAMESPACE, app_token, kv_spc, mount, spc

from devkit import ServiceAccountTokenIssuer
from provider.serve.health import HealthServer
from provider.serve.metrics import Metrics

pytestmark = pytest.mark.integration


# --- Health -----------------------------------------------------------------------------------


def test_probes_do_not_depend_on_vault(
    launch: Launcher, issuer: ServiceAccountTokenIssuer, dead_vault: str
) -> None:
    """Live and ready are 200 while serving, even when Vault is unreachable and Mounts fail."""
    process = launch.start(vault_addr=dead_vault)
    base = health_base(process)

    outcome = mount_once(process, kv_spc("app/x"), tokens=driver_tokens(app_token(issuer)))

    assert outcome.code == grpc.StatusCode.UNAVAILABLE, outcome.message
    assert probe(base, "/health/live") == (200, "ok\n")
    assert probe(base, "/health/ready") == (200, "ok\n")
    assert probe(base, "/health/other")[0] == 404


def test_readiness_fails_while_draining_and_probes_fail_after_exit(launch: Launcher) -> None:
    """After SIGTERM, with a Mount in flight, ready is 503 "shutting down"; once stopped, probes fail."""
    with SlowVault(delay=1.5) as slow:
        process = launch.start("-shutdown-grace=10s", vault_addr=slow.url)
        base = health_base(process)
        with ThreadPoolExecutor(max_workers=1) as pool:
            in_flight = pool.submit(
                mount, process, spc("- objectName: v\n  secretPath: secret/data/slow\n  secretKey: value")
            )
            assert slow.login_started.wait(timeout=10)
            assert probe(base, "/health/ready") == (200, "ok\n")
            process.terminate()
            ready = _wait_for_status(base, "/health/ready", 503)
            result = in_flight.result(timeout=20)
        code = process.wait_exit()

    assert ready == (503, "shutting down\n")
    assert result.files[0].contents == b"slow-value"
    assert code == 0, process.log_text()
    for route in ("/health/live", "/health/ready"):
        with pytest.raises(requests.ConnectionError):
            probe(base, route)


def _wait_for_status(base: str, route: str, status: int, timeout: float = 3.0) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    while True:
        answer = probe(base, route)
        if answer[0] == status or time.monotonic() > deadline:
            return answer
        time.sleep(0.02)


def test_health_flips_when_the_grpc_server_stops(tmp_path: Path) -> None:
    """The probes ask the gRPC server over its socket: 200 while it serves, 503 once it is gone."""
    socket_path = tmp_path / "vault.sock"
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"unix://{socket_path}")
    server.start()
    probes = HealthServer("127.0.0.1:0", socket_path, Metrics())
    probes.start()
    base = f"http://127.0.0.1:{probes.port}"
    try:
        assert probe(base, "/health/live") == (200, "ok\n")
        server.stop(grace=0).wait()
        live, ready = probe(base, "/health/live"), probe(base, "/health/ready")
    finally:
        probes.stop()
        server.stop(grace=0)

    assert live == (503, "gRPC server not answering: UNAVAILABLE\n")
    assert ready == live


def test_grpc_health_service_on_the_socket(provider: ProviderProcess) -> None:
    """grpc.health.v1 on the provider's socket: SERVING overall and for the provider service."""
    with grpc.insecure_channel(f"unix://{provider.socket_path}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        overall = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        service = stub.Check(health_pb2.HealthCheckRequest(service="v1alpha1.CSIDriverProvider"), timeout=5)
        with pytest.raises(grpc.RpcError) as unknown:
            stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)

    assert overall.status == health_pb2.HealthCheckResponse.SERVING
    assert service.status == health_pb2.HealthCheckResponse.SERVING
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


# --- Metrics ----------------------------------------------------------------------------------


def test_metrics_show_the_mounts_that_just_ran(
    launch: Launcher, vault: VaultEnv, issuer: ServiceAccountTokenIssuer
) -> None:
    """/metrics counts a good and a failed Mount by code, Vault requests and logins; no names or tokens.

    Both Mounts are the same pod with the same token: the second reuses the cached Vault token.
    """
    process = launch.start(vault_addr=vault.address)
    path = unique("app/metrics")
    vault.put_kv2(path, {"value": "counted"})
    pod_name = unique("metrics-pod")
    missing = unique("app/metrics-missing")
    token = app_token(issuer, pod_name)

    good = mount_once(process, kv_spc(path), tokens=driver_tokens(token), pod_name=pod_name, spc_name="good")
    bad = mount_once(
        process, kv_spc(missing), tokens=driver_tokens(token), pod_name=pod_name, spc_name="broken"
    )
    text = requests.get(f"{health_base(process)}/metrics", timeout=5).text
    samples = metric_samples(text)

    def value(name: str, **labels: str) -> float | None:
        return samples.get((f"vault_csi_provider_{name}", frozenset(labels.items())))

    assert (good.code, bad.code) == (grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND)
    assert value("mounts_total", result="success", code="OK") == 1.0
    assert value("mounts_total", result="failure", code="NOT_FOUND") == 1.0
    assert value("mount_failures_total", spc_namespace=NAMESPACE, spc_name="broken", code="NOT_FOUND") == 1.0
    assert value("mount_failures_total", spc_namespace=NAMESPACE, spc_name="good", code="OK") is None
    assert value("mount_duration_seconds_count", result="success", code="OK") == 1.0
    assert value("mount_duration_seconds_count", result="failure", code="NOT_FOUND") == 1.0
    assert value("vault_requests_total", kind="login", status="200") == 1.0
    assert value("vault_requests_total", kind="read", status="200") == 1.0
    assert value("vault_requests_total", kind="read", status="404") == 1.0
    assert value("vault_logins_total", result="success") == 1.0
    assert value("cache_lookups_total", cache="token", result="miss") == 1.0
    assert value("cache_lookups_total", cache="token", result="hit") == 1.0
    assert value("mounts_in_flight") == 0.0
    for private in (pod_name, path, missing, token):
        assert private not in text
