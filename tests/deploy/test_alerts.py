"""The monitoring component: alert rules checked and unit-tested by promtool, one source for the
rules, a runbook section per alert, and the PodMonitor, PrometheusRule and dashboard ConfigMap as
kustomize renders them, consistent with the DaemonSet and with the metrics the provider exports.

promtool comes with Debian's `prometheus` package (scripts/ensure-test-tools.sh installs it);
without it these tests skip, and on CI (CI=true) they fail. The real API server's validation of
the PodMonitor and PrometheusRule is tests/e2e/test_monitoring.py's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from render import DAEMONSET_DIR, REPO, build, tool_unavailable

from provider.serve.metrics import Metrics

sys.path.insert(0, str(REPO / "scripts"))
import dashboard_svg
import gen_monitoring

pytestmark = pytest.mark.deploy

COMPONENT = DAEMONSET_DIR / "components" / "monitoring"
ALERTS = COMPONENT / "alerts.yaml"
DASHBOARD = COMPONENT / "dashboard.json"
PROMTOOL_TESTS = Path(__file__).parent / "promtool" / "alerts_test.yaml"
RUNBOOKS = REPO / "docs" / "runbooks.md"
EXAMPLE = DAEMONSET_DIR / "examples" / "monitoring"
RUNBOOK_BASE = "https://vault-csi-provider.invalid/docs/runbooks.md#"
METRIC_NAME = re.compile(r"\bvault_csi_provider_[a-z_]+")


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        tool_unavailable(
            "promtool is not on PATH: it comes with Debian's prometheus package "
            "(sudo apt-get install -y prometheus, or bash scripts/ensure-test-tools.sh as root)"
        )
    return found


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def github_anchors(markdown: str) -> dict[str, str]:
    """Heading anchors as GitHub makes them (lower case, punctuation dropped, spaces to dashes) -> text."""
    anchors = {}
    for line in markdown.splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
            slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
            anchors[slug] = title
    return anchors


def sections(markdown: str) -> dict[str, str]:
    """'## ' heading -> the text under it."""
    parts = re.split(r"^## (.+)$", markdown, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def promtool_run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120, check=False)


def test_promtool_checks_the_rules_file_and_the_prometheusrule(promtool: str, tmp_path: Path) -> None:
    """`promtool check rules` accepts alerts.yaml and what the PrometheusRule's spec holds."""
    spec = yaml.safe_load((COMPONENT / "prometheusrule.yaml").read_text())["spec"]
    from_rule = tmp_path / "prometheusrule-spec.yaml"
    from_rule.write_text(yaml.safe_dump(spec))
    for path in (ALERTS, from_rule):
        done = promtool_run(promtool, "check", "rules", str(path))
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"SUCCESS: {len(rules())} rules found" in done.stdout


def test_promtool_unit_tests_of_every_alert_pass(promtool: str) -> None:
    """tests/deploy/promtool/alerts_test.yaml: synthetic series, expected alerts with their rendered text."""
    done = promtool_run(promtool, "test", "rules", str(PROMTOOL_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    """Each alert has an evaluation that expects it and one that expects it silent."""
    firing: set[str] = set()
    silent: set[str] = set()
    for case in yaml.safe_load(PROMTOOL_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in rules()}
    assert names - firing == set(), "never tested firing"
    assert names - silent == set(), "never tested silent"
    assert (firing | silent) - names == set(), "tests of alerts that do not exist"


def test_the_prometheusrule_is_generated_from_the_rules_file() -> None:
    """One source: the committed PrometheusRule is what scripts/gen_monitoring.py makes of alerts.yaml."""
    committed = (COMPONENT / "prometheusrule.yaml").read_text()
    assert committed == gen_monitoring.rendered(ALERTS.read_text()), (
        "stale: run python scripts/gen_monitoring.py"
    )
    assert yaml.safe_load(committed)["spec"] == yaml.safe_load(ALERTS.read_text())


def test_every_alert_says_what_to_do() -> None:
    """summary, description, a severity, and a runbook_url at a section of docs/runbooks.md that says
    what it means, how to confirm it and what to do; no section without its alert."""
    text = RUNBOOKS.read_text()
    anchors = github_anchors(text)
    by_title = sections(text)
    names = [rule["alert"] for rule in rules()]
    for rule in rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}, name
        url = rule["annotations"]["runbook_url"]
        assert url.startswith(RUNBOOK_BASE), f"{name}: {url}"
        anchor = url.removeprefix(RUNBOOK_BASE)
        assert anchors.get(anchor) == name, f"{name}: no section #{anchor} in docs/runbooks.md"
        for part in ("**Meaning.**", "**Confirm.**", "**Act.**"):
            assert part in by_title[name], f"{name}: its runbook section lacks {part}"
    assert sorted(by_title) == sorted(names)


def exported_sample_names() -> set[str]:
    """Every sample name a scrape of the provider can show, from its registry's families."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    names = set()
    for family in Metrics().registry.collect():
        names |= {family.name + suffix for suffix in suffixes[family.type]}
    return names


def test_rules_and_dashboard_read_only_metrics_the_provider_exports() -> None:
    """A typo in a metric name would make an alert or a panel silently empty."""
    exported = exported_sample_names()
    used_by_rules = {name for rule in rules() for name in METRIC_NAME.findall(rule["expr"])}
    used_by_panels = {
        name
        for panel in json.loads(DASHBOARD.read_text())["panels"]
        for target in panel["targets"]
        for name in METRIC_NAME.findall(target["expr"])
    }
    assert used_by_rules - exported == set()
    assert used_by_panels - exported == set()
    # The metrics added for the alerts are read by them.
    assert {"vault_csi_provider_ready", "vault_csi_provider_lease_renewals_total"} <= used_by_rules


@pytest.fixture(scope="module")
def component(kustomize: Path) -> list[dict[str, Any]]:
    return build(kustomize, EXAMPLE)


def _one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [obj for obj in objects if obj["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def test_the_podmonitor_selects_the_provider_pods_metrics_port(component: list[dict[str, Any]]) -> None:
    """Same namespace, the DaemonSet's selector labels, its container's metrics port by name, and the
    job label the rules and panels filter on."""
    monitor = _one(component, "PodMonitor")
    daemonset = _one(component, "DaemonSet")
    template = daemonset["spec"]["template"]
    assert monitor["metadata"]["namespace"] == daemonset["metadata"]["namespace"]
    assert monitor["spec"]["selector"] == daemonset["spec"]["selector"]
    ports = {port["name"]: port for c in template["spec"]["containers"] for port in c.get("ports", [])}
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] in ports
    assert endpoint["path"] == "/metrics"
    health_flags = [a for a in template["spec"]["containers"][0]["args"] if a.startswith("--health-addr=")]
    assert health_flags == [f"--health-addr=:{ports[endpoint['port']]['containerPort']}"]
    job = template["metadata"]["labels"][monitor["spec"]["jobLabel"]]
    assert all(f'job="{job}"' in rule["expr"] for rule in rules() if "vault_csi_provider_" in rule["expr"])


def test_the_component_carries_the_rules_and_the_dashboard(component: list[dict[str, Any]]) -> None:
    """The PrometheusRule holds alerts.yaml's groups; the ConfigMap holds dashboard.json byte for byte
    under the label Grafana's sidecar watches, and is a valid ConfigMap."""
    rule = _one(component, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load(ALERTS.read_text())
    configmap = _one(component, "ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["data"] == {"vault-csi-provider.json": DASHBOARD.read_text()}
    for version in ("1.25", kubernetes_validate.latest_version()):
        kubernetes_validate.validate(configmap, version, strict=True)


def test_the_dashboard_has_the_panels_operators_look_for() -> None:
    """Mounts by code, latency p50/p99, Vault requests by kind and status, cache hit rates, kept
    secrets, in-flight Mounts, and per-node views, each with a query on the Prometheus data source."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = {panel["title"]: [t["expr"] for t in panel["targets"]] for panel in dashboard["panels"]}
    assert any("sum by (code)" in q and "mounts_total" in q for qs in queries.values() for q in qs)
    latency = queries["Mount latency p50 and p99"]
    assert [q.split(",")[0] for q in latency] == ["histogram_quantile(0.5", "histogram_quantile(0.99"]
    assert any("sum by (kind, status)" in q for q in queries["Vault requests by kind and status"])
    assert any('result="hit"' in q for q in queries["Cache hit rate"])
    assert any("kept_secrets" in q for q in queries["Kept secrets and cached tokens"])
    assert any("mounts_in_flight" in q for q in queries["In-flight Mounts"])
    assert sum("by (node" in q for qs in queries.values() for q in qs) >= 3
    datasources = {panel["datasource"]["uid"] for panel in dashboard["panels"]}
    assert datasources == {"${datasource}"}
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


RUNBOOK_OVERLAY = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - {example}
  - runbook-base.yaml
replacements:
  - source:
      kind: ConfigMap
      name: runbook-base
      fieldPath: data.base
    targets:
      - select:
          kind: PrometheusRule
        fieldPaths:
          - spec.groups.*.rules.*.annotations.runbook_url
        options:
          delimiter: /docs/runbooks.md#
          index: 0
"""
RUNBOOK_BASE_CONFIG = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: runbook-base
  annotations:
    config.kubernetes.io/local-config: "true"
data:
  base: https://git.example.com/platform/vault-csi-provider/-/blob/main
"""


def test_an_overlay_points_every_runbook_url_at_its_own_copy(kustomize: Path, tmp_path: Path) -> None:
    """The README's overlay: one replacement sets the base of every runbook_url, anchors kept, and
    its local-config ConfigMap is not part of the output."""
    # kustomize takes only relative paths to other kustomizations.
    (tmp_path / "kustomization.yaml").write_text(
        RUNBOOK_OVERLAY.format(example=os.path.relpath(EXAMPLE, tmp_path))
    )
    (tmp_path / "runbook-base.yaml").write_text(RUNBOOK_BASE_CONFIG)
    objects = build(kustomize, tmp_path)
    rule = _one(objects, "PrometheusRule")
    urls = [r["annotations"]["runbook_url"] for group in rule["spec"]["groups"] for r in group["rules"]]
    base = "https://git.example.com/platform/vault-csi-provider/-/blob/main/docs/runbooks.md#"
    assert urls == [r["annotations"]["runbook_url"].replace(RUNBOOK_BASE, base) for r in rules()]
    assert all(url.startswith(base) for url in urls)
    assert [obj["metadata"]["name"] for obj in objects if obj["kind"] == "ConfigMap"] == [
        "vault-csi-provider-dashboard"
    ]


def test_the_dashboard_picture_draws_every_panel_from_the_answers() -> None:
    """scripts/dashboard_svg.py: one chart per panel with its title, one line per answered series, its
    legend; a panel without answers says so rather than drawing an empty frame silently."""
    dashboard = json.loads(DASHBOARD.read_text())
    first, second = dashboard["panels"][0], dashboard["panels"][1]
    answers = {
        "start": 0.0,
        "end": 120.0,
        "panels": {
            str(first["id"]): [
                {"legend": "OK", "points": [[0, 1.0], [60, 2.0], [120, 1.5]]},
                {"legend": "NOT_FOUND", "points": [[0, 0.0], [60, float("nan")], [120, 0.5]]},
            ],
            **{str(p["id"]): [{"legend": "x", "points": [[0, 1.0]]}] for p in dashboard["panels"][2:]},
        },
    }
    svg = ElementTree.fromstring(dashboard_svg.render(dashboard, answers))  # noqa: S314 (our own output)
    ns = "{http://www.w3.org/2000/svg}"
    panels = {g.find(f"{ns}text").text: g for g in svg.iter(f"{ns}g") if g.find(f"{ns}text") is not None}
    assert {p["title"] for p in dashboard["panels"]} <= set(panels)
    drawn = panels[first["title"]]
    assert len(drawn.findall(f"{ns}polyline")) == 2
    assert {"OK", "NOT_FOUND"} <= {t.text for t in drawn.iter(f"{ns}text")}
    # The NaN point is left out, not drawn at 0 or at the top.
    nan_line = drawn.findall(f"{ns}polyline")[1].get("points", "")
    assert len(nan_line.split()) == 2
    assert "No data" in {t.text for t in panels[second["title"]].iter(f"{ns}text")}


def test_the_readme_table_lists_every_alert_with_its_for() -> None:
    """README.md's "Monitoring" table: one row per alert of alerts.yaml, with its `for:` and severity."""
    rows = re.findall(
        r"^\| `(VaultCSIProvider\w+)` \| .+ \| (\w+) \| (\w+) \|$", (REPO / "README.md").read_text(), re.M
    )
    assert rows == [(rule["alert"], rule["for"], rule["labels"]["severity"]) for rule in rules()]
