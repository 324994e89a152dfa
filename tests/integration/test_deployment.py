"""The provider deployed: in a cluster (HMAC key Secret, TokenRequest), health, metrics, logs, the chart.

"In a cluster" means what a pod sees: KUBERNETES_SERVICE_HOST/PORT pointing at a fake
kube-apiserver over HTTPS (a CA of our own), and service-account files holding a token the
session's issuer minted for the provider's own service account. The fake speaks the real
API's JSON and can deny by RBAC, be unavailable, or lose a create race. Vault is the
session's OpenBao; its TokenReviews go to the session's HTTP apiserver, so the fake here
sees only the provider's own calls.

Two module providers run in one cluster and serve most tests (text and JSON logs); the
rest start their own process for a start-up behaviour or a flag.
"""

from __future__ import annotations

import json
import socket
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest
import requests
from cluster_kit import (
    PROVIDER_NAMESPACE,
    Cluster,
    ClusterCa,
    Launcher,
    SlowVault,
    driver_tokens,
    health_base,
    metric_samples,
    mount_once,
    probe,
)
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from harness import ProviderProcess, UnixForwarder, VaultEnv, pod_uid, unique

from devkit import ServiceAccountTokenIssuer, free_port
from provider.serve.health import HealthServer
from provider.serve.metrics import Metrics
from provider.tools.driver import ProviderCallError

pytestmark = pytest.mark.integration

NAMESPACE = "team-a"
SERVICE_ACCOUNT = "app"
DEFAULT_SECRET = "vault-csi-provider-hmac-key"
SECRETS = "secrets"
TOKENS = "serviceaccounts/token"


def spc(objects: str, role: str = "app", **parameters: str) -> dict[str, str]:
    return {"roleName": role, "objects": textwrap.dedent(objects).strip() + "\n", **parameters}


def kv_spc(path: str, **parameters: str) -> dict[str, str]:
    """One object `value` from key `value` of the KV v2 secret at secret/data/<path>."""
    return spc(f"- objectName: value\n  secretPath: secret/data/{path}\n  secretKey: value\n", **parameters)


def mount(process: ProviderProcess, parameters: dict[str, str], **kwargs: Any) -> Any:
    kwargs.setdefault("namespace", NAMESPACE)
    kwargs.setdefault("service_account", SERVICE_ACCOUNT)
    return process.mount(parameters, **kwargs)


def app_token(issuer: ServiceAccountTokenIssuer, pod_name: str = "app-0", audience: str = "vault") -> str:
    return issuer.mint(NAMESPACE, SERVICE_ACCOUNT, pod_name, pod_uid(NAMESPACE, pod_name), [audience])


# --- Fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster_ca() -> ClusterCa:
    return ClusterCa()


@pytest.fixture(scope="module")
def cluster(
    issuer: ServiceAccountTokenIssuer, cluster_ca: ClusterCa, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """The cluster the module providers run in; faults injected by a test are reset after it."""
    shared = Cluster.start(issuer, cluster_ca, tmp_path_factory.mktemp("serviceaccount"))
    yield shared
    shared.stop()


@pytest.fixture(autouse=True)
def _reset_cluster_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    shared = request.getfixturevalue("cluster") if "cluster" in request.fixturenames else None
    yield
    if shared is not None:
        shared.api.reset_faults()


@pytest.fixture
def new_cluster(
    issuer: ServiceAccountTokenIssuer, cluster_ca: ClusterCa, tmp_path: Path
) -> Iterator[Cluster]:
    """A cluster of this test's own, with no Secrets yet."""
    own = Cluster.start(issuer, cluster_ca, tmp_path / "serviceaccount")
    yield own
    own.stop()


@pytest.fixture(scope="module")
def module_launcher(
    issuer: ServiceAccountTokenIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Launcher]:
    started = Launcher(issuer, tmp_path_factory)
    yield started
    started.stop_all()


@pytest.fixture
def launch(issuer: ServiceAccountTokenIssuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    started = Launcher(issuer, tmp_path_factory)
    yield started
    started.stop_all()


@pytest.fixture(scope="module")
def in_cluster(module_launcher: Launcher, cluster: Cluster, vault: VaultEnv) -> ProviderProcess:
    """In the cluster, without -hmac-key-file, with the TokenRequest fallback; text logs."""
    return module_launcher.start(
        "-token-request-fallback", vault_addr=vault.address, env=cluster.env(), key_file=False
    )


@pytest.fixture(scope="module")
def in_cluster_json(
    module_launcher: Launcher, cluster: Cluster, vault: VaultEnv, in_cluster: ProviderProcess
) -> ProviderProcess:
    """A second provider in the same cluster (started after `in_cluster`), logging JSON."""
    return module_launcher.start(
        "-token-request-fallback",
        "-log-format=json",
        vault_addr=vault.address,
        env=cluster.env(),
        key_file=False,
    )


@pytest.fixture(scope="module")
def dead_vault() -> str:
    return f"http://127.0.0.1:{free_port()}"


# --- HMAC key from a Kubernetes Secret ------------------------------------------------------


def test_missing_key_secret_is_created_immutable(in_cluster: ProviderProcess, cluster: Cluster) -> None:
    """Without -hmac-key-file, in a cluster, the provider creates its immutable key Secret with 32 bytes."""
    secret = cluster.api.secrets[(PROVIDER_NAMESPACE, DEFAULT_SECRET)]
    data = cluster.api.secret_data(PROVIDER_NAMESPACE, DEFAULT_SECRET)

    assert secret["immutable"] is True
    assert secret["type"] == "Opaque"
    assert data is not None
    assert list(data) == ["key"]
    assert len(data["key"]) == 32
    assert secret["metadata"]["labels"]["app.kubernetes.io/name"] == "vault-csi-provider"
    assert len(cluster.api.calls(SECRETS, "create")) == 1
    assert cluster.api.calls(SECRETS)[0].verb == "get", "it reads before it creates"


def test_second_provider_reads_the_secret_and_versions_agree(
    in_cluster: ProviderProcess,
    in_cluster_json: ProviderProcess,
    provider: ProviderProcess,
    cluster: Cluster,
    vault: VaultEnv,
) -> None:
    """A second provider reads the existing Secret (no second create); both give identical versions."""
    path = unique("app/shared-secret")
    vault.put_kv2(path, {"value": "one-key-for-all-nodes"})

    first = mount(in_cluster, kv_spc(path))
    second = mount(in_cluster_json, kv_spc(path))
    key_file_provider = mount(provider, kv_spc(path))

    assert len(cluster.api.calls(SECRETS, "create")) == 1
    assert len(cluster.api.calls(SECRETS, "get")) == 2
    assert first.files == second.files
    assert first.versions == second.versions
    assert key_file_provider.versions != first.versions, "the versions come from the Secret's key"


def test_mounts_make_no_kubernetes_api_calls(
    in_cluster: ProviderProcess, cluster: Cluster, vault: VaultEnv
) -> None:
    """After start, Mounts never call the Kubernetes API: the key is kept in memory."""
    path = unique("app/no-api-calls")
    vault.put_kv2(path, {"value": "cached-key"})
    before = list(cluster.api.api_calls)

    for index in range(5):
        mount(in_cluster, kv_spc(path), pod_name=f"app-{index}")

    assert cluster.api.api_calls == before


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"other": b"k" * 32}, id="no-key-field"),
        pytest.param({"key": b"short"}, id="key-too-short"),
    ],
)
def test_secret_without_a_usable_key_stops_the_start(
    launch: Launcher, new_cluster: Cluster, data: dict[str, bytes]
) -> None:
    """A Secret (named by -hmac-secret-name) without a usable data.key: exit 1 saying what to fix."""
    new_cluster.api.put_secret(PROVIDER_NAMESPACE, "team-hmac", data)
    process = launch.start(
        "-hmac-secret-name=team-hmac", vault_addr=None, env=new_cluster.env(), key_file=False, wait=False
    )

    assert process.wait_exit() == 1
    log = process.log_text()
    assert f"the Secret {PROVIDER_NAMESPACE}/team-hmac exists but has no usable data.key" in log
    assert "delete it so the provider creates a new one" in log
    assert new_cluster.api.calls(SECRETS, "create") == []
    assert not process.socket_path.exists()


@pytest.mark.parametrize(
    ("verb", "expected"),
    [
        pytest.param(
            "get",
            f'secrets "{DEFAULT_SECRET}" is forbidden: User "system:serviceaccount:{PROVIDER_NAMESPACE}:'
            f'vault-csi-provider" cannot get resource "secrets"',
            id="get",
        ),
        pytest.param("create", 'cannot create resource "secrets"', id="create"),
    ],
)
def test_forbidden_secret_access_stops_the_start(
    launch: Launcher, new_cluster: Cluster, verb: str, expected: str
) -> None:
    """RBAC refusing the key Secret: exit 1 naming the permission, without retrying."""
    new_cluster.api.forbidden.add((verb, SECRETS))
    process = launch.start(vault_addr=None, env=new_cluster.env(), key_file=False, wait=False)

    assert process.wait_exit() == 1
    log = process.log_text()
    assert (
        f"the provider's service account needs RBAC permission to {verb} secrets "
        f"in namespace {PROVIDER_NAMESPACE} (403)"
    ) in log
    assert expected in log
    assert len(new_cluster.api.calls(SECRETS, verb)) == 1


def test_create_race_is_resolved_by_reading_the_winner(
    launch: Launcher, new_cluster: Cluster, vault: VaultEnv, tmp_path: Path
) -> None:
    """Another node creates the Secret first (409): the provider re-reads and uses that node's key."""
    winner = b"w" * 32
    new_cluster.api.conflict_on_next_create({"key": winner})
    process = launch.start(vault_addr=vault.address, env=new_cluster.env(), key_file=False)
    winner_file = tmp_path / "winner.key"
    winner_file.write_bytes(winner)
    same_key = launch.start(vault_addr=vault.address, key_file=winner_file)
    path = unique("app/race")
    vault.put_kv2(path, {"value": "after-the-race"})

    calls = [(call.verb, call.name) for call in new_cluster.api.calls(SECRETS)]
    assert calls == [("get", DEFAULT_SECRET), ("create", ""), ("get", DEFAULT_SECRET)]
    assert new_cluster.api.secret_data(PROVIDER_NAMESPACE, DEFAULT_SECRET) == {"key": winner}
    assert mount(process, kv_spc(path)).versions == mount(same_key, kv_spc(path)).versions


def test_unavailable_api_at_start_is_retried(launch: Launcher, new_cluster: Cluster) -> None:
    """The API answering 503 twice, then normally: the provider retries and creates the named Secret."""
    new_cluster.api.fail_next(2)
    process = launch.start(
        "--hmac-secret-name=node-hmac", vault_addr=None, env=new_cluster.env(), key_file=False
    )

    assert process.version()[0] == "v1alpha1"
    calls = [(call.verb, call.name) for call in new_cluster.api.calls(SECRETS)]
    assert calls == [("get", "node-hmac")] * 3 + [("create", "")]
    assert new_cluster.api.calls(SECRETS, "create")[0].body["metadata"]["name"] == "node-hmac"
    assert new_cluster.api.secret_data(PROVIDER_NAMESPACE, "node-hmac") is not None
    assert "cannot get the HMAC key yet" in process.log_text()


@pytest.mark.parametrize(
    "in_a_cluster", [pytest.param(False, id="no-cluster"), pytest.param(True, id="cluster")]
)
def test_key_file_needs_no_kubernetes(
    launch: Launcher, new_cluster: Cluster, vault: VaultEnv, in_a_cluster: bool
) -> None:
    """With -hmac-key-file the provider starts and mounts without a single Kubernetes API call."""
    process = launch.start(vault_addr=vault.address, env=new_cluster.env() if in_a_cluster else {})
    path = unique("app/key-file")
    vault.put_kv2(path, {"value": "no-kubernetes-needed"})

    assert mount(process, kv_spc(path)).files[0].contents == b"no-kubernetes-needed"
    assert new_cluster.api.api_calls == []
    assert "not in a cluster and no -hmac-key-file" not in process.log_text()


# --- TokenRequest fallback --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameters", "driver_audience", "requested"),
    [
        pytest.param({}, None, "vault", id="default-audience"),
        pytest.param(
            {"audience": "custom-aud", "roleName": "custom-aud"}, None, "custom-aud", id="spc-audience"
        ),
        pytest.param(
            {"audience": "custom-aud", "roleName": "custom-aud"},
            "vault",
            "custom-aud",
            id="driver-token-for-another-audience",
        ),
    ],
)
def test_token_request_fallback_logs_in_with_a_requested_token(
    in_cluster: ProviderProcess,
    cluster: Cluster,
    vault: VaultEnv,
    parameters: dict[str, str],
    driver_audience: str | None,
    requested: str,
) -> None:
    """Without a driver token for the audience, a token bound to the pod is requested and used to log in."""
    path = unique("app/fallback")
    vault.put_kv2(path, {"value": "via-token-request"})
    pod_name = unique("fallback-pod")
    requests_before = len(cluster.api.calls(TOKENS))

    result = mount(in_cluster, kv_spc(path) | parameters, pod_name=pod_name, audience=driver_audience)

    assert result.files[0].contents == b"via-token-request"
    calls = cluster.api.calls(TOKENS)
    assert len(calls) == requests_before + 1
    assert (calls[-1].namespace, calls[-1].name) == (NAMESPACE, SERVICE_ACCOUNT)
    spec = calls[-1].body["spec"]
    assert spec["audiences"] == [requested]
    assert spec["expirationSeconds"] == 600
    bound = spec["boundObjectRef"]
    assert (bound["kind"], bound["name"], bound["uid"]) == ("Pod", pod_name, pod_uid(NAMESPACE, pod_name))


def test_without_the_fallback_a_tokenless_mount_is_invalid(
    provider: ProviderProcess, vault: VaultEnv
) -> None:
    """Without -token-request-fallback a tokenless Mount is INVALID_ARGUMENT naming tokenRequests."""
    with pytest.raises(ProviderCallError) as info:
        mount(provider, kv_spc("app/anything"), audience=None)

    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT, info.value.message
    assert "no service-account token in the request" in info.value.message
    assert "tokenRequests" in info.value.message


def test_token_request_forbidden_is_permission_denied(in_cluster: ProviderProcess, cluster: Cluster) -> None:
    """The fallback refused by RBAC is PERMISSION_DENIED naming `create serviceaccounts/token`."""
    cluster.api.forbidden.add(("create", TOKENS))

    outcome = mount_once(in_cluster, kv_spc("app/anything"), tokens=None)

    assert outcome.code == grpc.StatusCode.PERMISSION_DENIED, outcome.message
    assert "the driver passed no token for audience 'vault'" in outcome.message
    assert (
        f"needs RBAC permission to create serviceaccounts/token in namespace {NAMESPACE}" in outcome.message
    )


def test_token_request_with_the_api_unavailable_is_unavailable(
    in_cluster: ProviderProcess, cluster: Cluster
) -> None:
    """The fallback meeting a 503 from the API is UNAVAILABLE (the driver retries), not a denial."""
    cluster.api.fail_next(1)

    outcome = mount_once(in_cluster, kv_spc("app/anything"), tokens=None)

    assert outcome.code == grpc.StatusCode.UNAVAILABLE, outcome.message
    assert "HTTP 503" in outcome.message


def test_token_request_fallback_needs_a_cluster(launch: Launcher) -> None:
    """-token-request-fallback outside a cluster: the provider refuses to start, exit 1, saying why."""
    process = launch.start("-token-request-fallback", vault_addr=None, wait=False)

    assert process.wait_exit() == 1
    assert (
        "-token-request-fallback needs the Kubernetes API: run the provider in a cluster"
        in process.log_text()
    )


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


# --- The official chart's arguments ------------------------------------------------------------


@pytest.mark.parametrize(
    "chart_args",
    [
        pytest.param(
            ["--log-level=debug", "--hmac-secret-name=vault-csi-provider-hmac-key"], id="chart-0.2x"
        ),
        pytest.param(["--debug=false", "--hmac-secret-name=vault-csi-provider-hmac-key"], id="older-chart"),
    ],
)
def test_chart_arguments_serve_mounts(
    launch: Launcher,
    new_cluster: Cluster,
    vault: VaultEnv,
    tmp_path: Path,
    chart_args: list[str],
) -> None:
    """Exactly the chart's args and VAULT_ADDR=unix://.../agent.sock: the key Secret is made, Mounts work."""
    if not _port_free(8080):
        pytest.skip("port 8080 is taken: the chart's arguments leave -health-addr at its default :8080")
    port = urlsplit(vault.address).port
    assert port is not None
    path = unique("app/chart")
    vault.put_kv2(path, {"value": "through-the-agent-socket"})
    with UnixForwarder(tmp_path / "agent.sock", ("127.0.0.1", port)) as agent:
        # The chart sets no POD_NAMESPACE: the namespace comes from the service-account files.
        env = new_cluster.env(pod_namespace=False) | {"VAULT_ADDR": f"unix://{agent.socket_path}"}
        process = launch.start(
            vault_addr=None, env=env, argv=["--endpoint={endpoint}", *chart_args], key_file=False
        )
        result = mount(process, kv_spc(path))
        ready = probe("http://127.0.0.1:8080", "/health/ready")
        code = process.stop()

    assert result.files[0].contents == b"through-the-agent-socket"
    assert agent.connections >= 1
    assert new_cluster.api.secret_data(PROVIDER_NAMESPACE, DEFAULT_SECRET) is not None
    assert ready == (200, "ok\n")
    assert code == 0, process.log_text()


def _port_free(port: int) -> bool:
    with socket.socket() as probe_socket:
        # As the provider's HTTP server binds: connections in TIME_WAIT do not count.
        probe_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe_socket.bind(("", port))
        except OSError:
            return False
    return True


# --- Logs and redaction -----------------------------------------------------------------------


def test_json_logs_are_one_object_per_line(
    in_cluster_json: ProviderProcess, vault: VaultEnv, issuer: ServiceAccountTokenIssuer
) -> None:
    """With -log-format=json every line parses as JSON, and the Mount line carries pod, spc, objects, code."""
    path = unique("app/json-log")
    vault.put_kv2(path, {"value": "logged-as-json"})
    pod_name = unique("json-pod")
    outcome = mount_once(
        in_cluster_json,
        kv_spc(path),
        tokens=driver_tokens(app_token(issuer, pod_name)),
        pod_name=pod_name,
        spc_name="json-spc",
    )

    entries = [json.loads(line) for line in in_cluster_json.log_text().splitlines() if line.strip()]
    mounts = [entry for entry in entries if entry.get("pod") == f"{NAMESPACE}/{pod_name}"]
    assert outcome.code == grpc.StatusCode.OK, outcome.message
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    assert len(mounts) == 1
    assert mounts[0]["spc"] == "json-spc"
    assert mounts[0]["objects"] == 1
    assert mounts[0]["code"] == "OK"
    assert mounts[0]["level"] == "info"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_error_path_reveals_tokens_or_secrets(
    request: pytest.FixtureRequest,
    cluster: Cluster,
    vault: VaultEnv,
    issuer: ServiceAccountTokenIssuer,
    dead_vault: str,
    log_format: str,
) -> None:
    """Every error path at debug level: no planted token, secret or argument in logs, errors or metrics."""
    process: ProviderProcess = request.getfixturevalue(
        "in_cluster" if log_format == "text" else "in_cluster_json"
    )
    planted_token = unique("planted-sa-token")
    planted_value = unique("planted-secret-value")
    planted_arg = unique("planted-arg")
    path = unique("app/planted")
    vault.put_kv2(path, {"value": planted_value, "blob": f"{planted_value}*"})
    good_token = app_token(issuer)
    denied_token = issuer.mint(NAMESPACE, "web", "app-0", pod_uid(NAMESPACE, "app-0"))
    good = driver_tokens(good_token)
    read = f"- objectName: value\n  secretPath: secret/data/{path}\n  secretKey: value\n"
    cases: list[tuple[str, dict[str, str], Any, grpc.StatusCode]] = [
        (
            "objects YAML that does not parse",
            spc(f"- objectName: v\n  secretPath: secret/data/{path}\n  secretKey: [{planted_value}\n"),
            good,
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            "unknown object key",
            spc(f"{read}  secretkey: {planted_value}\n  secretArgs:\n    password: {planted_arg}\n"),
            good,
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            "login with a garbage token",
            spc(read),
            driver_tokens(planted_token),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        ("login denied", spc(read), driver_tokens(denied_token), grpc.StatusCode.PERMISSION_DENIED),
        ("read denied", kv_spc(unique("forbidden/x")), good, grpc.StatusCode.PERMISSION_DENIED),
        ("missing path", kv_spc(unique("app/absent")), good, grpc.StatusCode.NOT_FOUND),
        (
            "missing key",
            spc(f"- objectName: v\n  secretPath: secret/data/{path}\n  secretKey: absent\n"),
            good,
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            "value that is not base64",
            spc(
                f"- objectName: v\n  secretPath: secret/data/{path}\n  secretKey: blob\n  encoding: base64\n"
            ),
            good,
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            "Vault echoing a refused argument",
            spc(
                "- objectName: cert\n  secretPath: pki/issue/web\n  method: PUT\n  secretKey: certificate\n"
                f"  secretArgs:\n    common_name: {planted_arg}.not-allowed.test\n"
            ),
            good,
            grpc.StatusCode.FAILED_PRECONDITION,
        ),
        (
            "template failing on a value",
            spc(
                f'- objectName: t\n  template: \'{{{{ with secret "secret/data/{path}" }}}}'
                "{{ .Data.data.value | base64Decode }}{{ end }}'\n"
            ),
            good,
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            "template missing a key",
            spc(
                f'- objectName: t\n  template: \'{{{{ with secret "secret/data/{path}" }}}}'
                "{{ .Data.data.absent }}{{ end }}'\n"
            ),
            good,
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            "Vault echoing a refused template argument",
            spc(
                '- objectName: t\n  template: \'{{ with secret "pki/issue/web" '
                f'"common_name={planted_arg}.not-allowed.test" }}}}'
                "{{ .Data.certificate }}{{ end }}'\n"
            ),
            good,
            grpc.StatusCode.FAILED_PRECONDITION,
        ),
        ("TLS failure", spc(read, vaultAddress=vault.tls_address), good, grpc.StatusCode.FAILED_PRECONDITION),
        ("unreachable Vault", spc(read, vaultAddress=dead_vault), good, grpc.StatusCode.UNAVAILABLE),
        ("TokenRequest refused", spc(read), None, grpc.StatusCode.PERMISSION_DENIED),
        (
            "success",
            spc(
                f"{read}- objectName: cert\n  secretPath: pki/issue/web\n  method: PUT\n"
                f"  secretKey: certificate\n  secretArgs:\n    common_name: {planted_arg}.example.test\n"
            ),
            good,
            grpc.StatusCode.OK,
        ),
    ]
    cluster.api.forbidden.add(("create", TOKENS))

    outcomes = {name: mount_once(process, parameters, tokens=tokens) for name, parameters, tokens, _ in cases}

    assert {name: outcomes[name].code for name, *_ in cases} == {name: code for name, *_, code in cases}
    assert outcomes["success"].files["value"] == planted_value.encode()
    metrics = requests.get(f"{health_base(process)}/metrics", timeout=5).text
    places = {
        "log": process.log_text(),
        "metrics": metrics,
        **{f"error of {name}": outcome.message for name, outcome in outcomes.items()},
    }
    planted = [planted_token, planted_value, planted_arg, good_token, denied_token]
    leaks = [(place, value) for place, text in places.items() for value in planted if value in text]
    assert leaks == []
