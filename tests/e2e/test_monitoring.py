"""Monitoring against the real stack: the component on the real API server, a real Prometheus scraping
providers through Mounts of the real driver, the dashboard's queries, and one alert end to end.

- The Prometheus Operator's CRDs (generated with controller-gen, prometheus_kit) are applied to the
  real kube-apiserver, then the component's PodMonitor, PrometheusRule and dashboard ConfigMap,
  stored for real and read back.
- Debian's Prometheus scrapes two providers every 2 s: the session's (labelled node e2e-node), and
  a second one, standing for the provider of another node, on a socket of its own name
  (`vault-alert.sock`: SecretProviderClasses with `provider: vault-alert` reach it through the same
  driver), with its own OpenBao (raft storage, so it survives a restart with its tokens and leases).
  Pods mount through both: KV reads, a database credential with a 30 s lease (renewed while the
  test runs), and a class that fails NOT_FOUND.
- Prometheus loads a copy of alerts.yaml with every range set to 20s and every `for:` to 10s
  (shortened_rules): the shipped rules look over minutes and wait 5 to 15 minutes, as a cluster
  needs; the copy keeps every expression and threshold.
- The end-to-end alert stops the second OpenBao (the session's OpenBao, shared with other
  tests, is never touched): VaultCSIProviderVaultUnreachable fires for that provider only, within
  the copy's window and `for:`, and resolves once OpenBao is started and unsealed again.
"""

from __future__ import annotations

import calendar
import json
import math
import os
import re
import shutil
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from binaries import BuildFailed
from cluster_kit import health_base
from conftest import PROVIDER_NAMESPACE, E2eVault, ProviderUnderTest
from driver import DriverProcess
from harness import write_key_file
from kube_api import ApiError, KubeApi, wait_for
from kubelet import Kubelet
from prometheus_client.parser import text_string_to_metric_families
from prometheus_kit import PersistentOpenBao, PrometheusServer, operator_crds, shortened_rules
from render import DAEMONSET_DIR, REPO, build, find_kustomize, tool_unavailable
from scenario_kit import (
    MountedPod,
    create_namespace,
    create_service_account,
    failed_mount_events,
    objects_yaml,
    pod_manifest,
    secret_provider_class,
)

from devkit import PostgresServer
from devkit import vault_setup as setup

sys.path.insert(0, str(REPO / "scripts"))
import dashboard_svg

NS = "monitoring-e2e"
NODE = "e2e-node"
SECOND_NODE = "e2e-node-2"
SECOND_PROVIDER = "vault-alert"
JOB = "vault-csi-provider"
METRIC_NAME = re.compile(r"\bvault_csi_provider_[a-z_]+")
COMPONENT = DAEMONSET_DIR / "components" / "monitoring"
DASHBOARD = json.loads((COMPONENT / "dashboard.json").read_text())
WINDOW, HOLD = "20s", "10s"
EVENT_INTERVAL = "15m"
RATE_INTERVAL = "1m"  # what Grafana's $__rate_interval stands for in the data checks
PICTURE_RATE_INTERVAL = "20s"  # and in the picture: short enough to show where the outage begins and ends
POLICY = (
    'path "secret/data/monitoring/*" { capabilities = ["read"] }\n'
    'path "database/creds/monitoring" { capabilities = ["read"] }'
)
# Where a run may leave the dashboard picture (the README's docs/dashboard.svg is made so).
SVG_OUT_ENV = "VAULT_CSI_E2E_DASHBOARD_SVG"


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        tool_unavailable(
            "prometheus is not on PATH: sudo apt-get install -y prometheus (Debian's brings promtool)"
        )
    return found


@pytest.fixture(scope="module")
def monitoring_crds(api: KubeApi) -> list[str]:
    """The Operator's CRDs applied to the real API server, established and served."""
    try:
        paths = operator_crds()
    except BuildFailed as exc:
        tool_unavailable(f"cannot generate the Prometheus Operator's CRDs: {exc}")
    names = [obj["metadata"]["name"] for path in paths for obj in api.apply_file(path)]

    def served() -> bool:
        kinds = {entry["kind"] for entry in api.get("/apis/monitoring.coreos.com/v1")["resources"]}
        return {"PodMonitor", "PrometheusRule"} <= kinds

    wait_for(served, 60, "the monitoring.coreos.com/v1 kinds served")
    return names


def test_the_component_is_stored_by_the_real_api_server(
    api: KubeApi, monitoring_crds: list[str], provider: ProviderUnderTest
) -> None:
    """PodMonitor, PrometheusRule and the dashboard ConfigMap as the monitoring example renders them:
    created in the provider's namespace and read back unchanged (the CRDs' structural schemas prune
    unknown fields, so a misspelt field would come back missing). A PodMonitor with a port number
    where the schema wants a name is refused: the schemas are in force."""
    assert "podmonitors.monitoring.coreos.com" in monitoring_crds
    rendered = build(find_kustomize(), DAEMONSET_DIR / "examples" / "monitoring")
    ours = [obj for obj in rendered if obj["kind"] in ("PodMonitor", "PrometheusRule", "ConfigMap")]
    assert sorted(obj["kind"] for obj in ours) == ["ConfigMap", "PodMonitor", "PrometheusRule"]
    for obj in ours:
        api.apply(obj)
        stored = api.get(api.path_of(obj))
        assert stored["metadata"]["namespace"] == PROVIDER_NAMESPACE
        field = "data" if obj["kind"] == "ConfigMap" else "spec"
        assert stored[field] == obj[field], f"{obj['kind']} came back changed"

    wrong = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": "wrong-port", "namespace": PROVIDER_NAMESPACE},
        "spec": {"selector": {}, "podMetricsEndpoints": [{"port": 8080}]},
    }
    with pytest.raises(ApiError) as refused:
        api.apply(wrong)
    assert refused.value.status == 422, str(refused.value)


@pytest.fixture(scope="module")
def second_vault(
    e2e_vault: E2eVault, postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PersistentOpenBao]:
    """An OpenBao of this module's own: Kubernetes auth on the real TokenReview, KV, a database role."""
    server = PersistentOpenBao(tmp_path_factory.mktemp("second-openbao"))
    server.start()
    try:
        root = server.client()
        setup.enable_kv(root, "secret")
        e2e_vault.enable_kubernetes_auth(root)
        setup.write_policy(root, "monitoring", POLICY)
        setup.kubernetes_role(root, "kubernetes", "monitoring", ["app"], [NS], ["monitoring"], ttl="20m")
        setup.enable_database(
            root, "database", postgres.vault_connection_url, postgres.superuser, postgres.password,
            "monitoring", default_ttl="30s", max_ttl="10m",
        )  # fmt: skip
        setup.put_kv(root, "secret", "monitoring/app", {"password": "from-the-second-openbao"})
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def second_provider(
    second_vault: PersistentOpenBao, providers_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProviderUnderTest]:
    directory = tmp_path_factory.mktemp("second-provider")
    process = ProviderUnderTest(
        providers_dir / f"{SECOND_PROVIDER}.sock",
        second_vault.address,
        {},
        directory / "provider.log",
        key_file=write_key_file(directory / "hmac.key"),
    ).start()
    yield process
    process.stop()


def metrics_address(provider: ProviderUnderTest) -> str:
    assert provider.process is not None
    return health_base(provider.process).removeprefix("http://")


@pytest.fixture(scope="module")
def prometheus(
    prometheus_binary: str,
    provider: ProviderUnderTest,
    second_provider: ProviderUnderTest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PrometheusServer]:
    """Prometheus scraping both providers with the labels the PodMonitor gives, the rules loaded."""
    targets = {
        metrics_address(provider): {"namespace": PROVIDER_NAMESPACE, "pod": f"{JOB}-a", "node": NODE},
        metrics_address(second_provider): {
            "namespace": PROVIDER_NAMESPACE,
            "pod": f"{JOB}-b",
            "node": SECOND_NODE,
        },
    }
    rules = shortened_rules((COMPONENT / "alerts.yaml").read_text(), WINDOW, HOLD)
    server = PrometheusServer(prometheus_binary, tmp_path_factory.mktemp("prometheus"), JOB, targets, rules)
    server.start()
    try:
        # Both providers scraped before any pod mounts: a login made before the first scrape is
        # already in the first sample, and Prometheus sees no increase in it.
        up = f'count(up{{job="{JOB}"}} == 1)'
        wait_for(lambda: _scalar(server, up) == len(targets), 60, "both providers scraped", interval=1)
        yield server
    finally:
        server.stop()


def _scalar(prometheus: PrometheusServer, expr: str) -> float:
    result = prometheus.query(expr)
    return float(result[0]["value"][1]) if result else 0.0


@pytest.fixture(scope="module")
def scenario(
    prometheus: PrometheusServer,
    api: KubeApi,
    kubelet: Kubelet,
    driver: DriverProcess,
    e2e_vault: E2eVault,
    second_vault: PersistentOpenBao,
) -> Iterator[float]:
    """Pods mounting through both providers while Prometheus scrapes; their start time. Waits until
    a kept lease has been renewed and every provider has been scraped over a rate window."""
    started = time.time()
    create_namespace(api, NS)
    create_service_account(api, NS, "app")
    setup.write_policy(e2e_vault.root, "monitoring", POLICY)
    setup.kubernetes_role(
        e2e_vault.root, "kubernetes", "monitoring", ["app"], [NS], ["monitoring"], ttl="20m"
    )
    e2e_vault.put("monitoring/app", {"password": "from-the-session-openbao"})
    kv = "- objectName: password\n  secretPath: secret/data/monitoring/app\n  secretKey: password\n"
    db = "- objectName: db-user\n  secretPath: database/creds/monitoring\n  secretKey: username\n"
    missing = "- objectName: nope\n  secretPath: secret/data/monitoring/app\n  secretKey: nope\n"
    for name, objects, provider_name in (
        ("kv", kv, "vault"),
        ("missing", missing, "vault"),
        ("second", kv + db, SECOND_PROVIDER),
    ):
        parameters = {"roleName": "monitoring", "objects": objects_yaml(objects)}
        secret_provider_class(api, NS, name, parameters, provider=provider_name)
    pods = [
        MountedPod.run(api, kubelet, driver, pod_manifest(NS, "reader", "app", {"vol": "kv"}, NODE)),
        MountedPod.run(api, kubelet, driver, pod_manifest(NS, "db-reader", "app", {"vol": "second"}, NODE)),
    ]
    assert pods[1].read("vol", "password") == b"from-the-second-openbao"
    api.apply(pod_manifest(NS, "broken", "app", {"vol": "missing"}, NODE))
    failed_mount_events(kubelet, NS, "broken", "nope")
    renewed = f'sum(vault_csi_provider_lease_renewals_total{{job="{JOB}",result="renewed"}})'
    wait_for(lambda: _scalar(prometheus, renewed) > 0, 120, "a kept lease renewed", interval=2)
    time.sleep(max(0.0, started + 60 - time.time()))  # a whole RATE_INTERVAL of data behind every panel
    yield started
    for name in ("reader", "db-reader", "broken"):
        api.delete(f"/api/v1/namespaces/{NS}/pods/{name}", grace_seconds=0)
    for name in ("reader", "db-reader", "broken"):
        kubelet.wait_gone(NS, name)


def panel_queries() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(panel, target) for panel in DASHBOARD["panels"] for target in panel["targets"]]


def runnable(expr: str, rate_interval: str = RATE_INTERVAL) -> str:
    return expr.replace("$__rate_interval", rate_interval)


def test_every_dashboard_query_returns_data(scenario: float, prometheus: PrometheusServer) -> None:
    """Each panel's query answers at least one series with a finite value; the per-node panels show
    both providers; and the rates of Mounts, Vault requests and renewals are above zero."""
    empty = []
    for panel, target in panel_queries():
        result = prometheus.query(runnable(target["expr"]))
        values = [float(series["value"][1]) for series in result]
        if not any(math.isfinite(value) for value in values):
            empty.append(f"{panel['title']}: {target['expr']} -> {result}")
            continue
        if "by (node" in target["expr"]:
            assert {series["metric"]["node"] for series in result} == {NODE, SECOND_NODE}, panel["title"]
        if (
            target["expr"].startswith("sum by")
            and "rate(" in target["expr"]
            and "failures" not in target["expr"]
        ):
            # Over the whole module, not the panel's last minute: logins happen once per pod, at its
            # first Mount, and a slow machine may have done those more than a minute ago.
            since_start = prometheus.query(runnable(target["expr"], EVENT_INTERVAL))
            assert max(float(series["value"][1]) for series in since_start) > 0, (
                f"{panel['title']}: nothing happened in the last {EVENT_INTERVAL}"
            )
    assert empty == []


def test_every_metric_the_dashboard_reads_is_in_the_providers_metrics(
    scenario: float, provider: ProviderUnderTest, second_provider: ProviderUnderTest
) -> None:
    """The names in the panels' queries, against the sample names the providers' /metrics serve (the
    failures by class only where a Mount failed: the session provider, with the broken pod)."""
    used = {name for _, target in panel_queries() for name in METRIC_NAME.findall(target["expr"])}
    assert len(used) >= 8
    served: set[str] = set()
    for process in (provider, second_provider):
        assert process.process is not None
        text = requests.get(f"{health_base(process.process)}/metrics", timeout=10).text
        served |= {
            sample.name for family in text_string_to_metric_families(text) for sample in family.samples
        }
    assert used - served == set()


def active(prometheus: PrometheusServer, name: str) -> list[dict[str, Any]]:
    return [alert for alert in prometheus.alerts() if alert["labels"]["alertname"] == name]


def test_vault_unreachable_fires_within_its_for_and_resolves(
    scenario: float, prometheus: PrometheusServer, second_vault: PersistentOpenBao
) -> None:
    """Stop the second OpenBao: VaultCSIProviderVaultUnreachable goes pending for that provider only,
    fires once it held for `for:`, within the window plus `for:` (and a few evaluations); start and
    unseal OpenBao again, and the alert resolves as Mounts succeed."""
    name = "VaultCSIProviderVaultUnreachable"
    assert active(prometheus, name) == []
    stopped = time.time()
    second_vault.stop()
    try:
        firing = wait_for(
            lambda: [a for a in active(prometheus, name) if a["state"] == "firing"], 90, f"{name} firing", 1
        )
        fired = time.time()
        # The session provider's Vault still answers: nothing, not even pending, for its node.
        others = [a["labels"]["node"] for a in active(prometheus, name) if a["labels"]["node"] != SECOND_NODE]
    finally:
        second_vault.start()
    restarted = time.time()
    assert [alert["labels"]["node"] for alert in firing] == [SECOND_NODE]
    assert others == []
    assert fired - stopped <= 20 + 10 + 15, f"fired {fired - stopped:.0f} s after OpenBao stopped"
    active_at = calendar.timegm(time.strptime(firing[0]["activeAt"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert active_at >= stopped - 2, "pending before OpenBao was stopped"
    assert fired - active_at >= 10 - 2, "firing before it held for its `for:`"

    wait_for(lambda: active(prometheus, name) == [], 120, f"{name} resolved", 1)
    ok_mounts = f'sum(increase(vault_csi_provider_mounts_total{{node="{SECOND_NODE}",code="OK"}}[{WINDOW}]))'
    assert _scalar(prometheus, ok_mounts) > 0, "resolved, but the second provider's Mounts do not succeed"
    resolved = time.time() - restarted
    print(f"{name}: fired {fired - stopped:.0f} s after the stop, resolved {resolved:.0f} s after the start")


def answers_for(prometheus: PrometheusServer, start: float, end: float, step: float) -> dict[str, Any]:
    """Every panel's series over [start, end], for dashboard_svg."""
    panels: dict[str, list[dict[str, Any]]] = {}
    for panel, target in panel_queries():
        for series in prometheus.query_range(
            runnable(target["expr"], PICTURE_RATE_INTERVAL), start, end, step
        ):
            legend = target["legendFormat"]
            for key, value in series["metric"].items():
                legend = legend.replace("{{" + key + "}}", value)
            points = [[float(t), float(v)] for t, v in series["values"]]
            panels.setdefault(str(panel["id"]), []).append({"legend": legend, "points": points})
    return {"start": start, "end": end, "panels": panels}


def test_the_dashboard_picture_from_the_scenarios(
    scenario: float, prometheus: PrometheusServer, tmp_path: Path
) -> None:
    """The README's picture: every panel drawn from Prometheus' answers over the scenarios (with the
    outage, when the alert test ran before). Written to $VAULT_CSI_E2E_DASHBOARD_SVG when set."""
    answers = answers_for(prometheus, scenario, time.time(), 2)
    assert {str(panel["id"]) for panel in DASHBOARD["panels"]} <= set(answers["panels"])
    svg = dashboard_svg.render(DASHBOARD, answers)
    tree = ElementTree.fromstring(svg)  # noqa: S314 (the SVG we just drew)
    titles = {el.text for el in tree.iter("{http://www.w3.org/2000/svg}text")}
    assert {panel["title"] for panel in DASHBOARD["panels"]} <= titles
    assert "No data" not in titles
    (tmp_path / "answers.json").write_text(json.dumps(answers))
    (tmp_path / "dashboard.svg").write_text(svg)
    if os.environ.get(SVG_OUT_ENV):
        Path(os.environ[SVG_OUT_ENV]).write_text(svg)
