"""The deployment manifests: schema-valid offline, hardened, and consistent with the provider.

Every kustomization in daemonset/ is built with the real kustomize (see render.py) and
every object is checked against the Kubernetes JSON schemas that the kubernetes-validate
package ships (strict: unknown fields are errors), on the oldest and the newest
Kubernetes it knows. SecretProviderClass is a CRD without a schema there; the example is
checked by the provider's own parsers instead, the way a Mount would read it.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from render import EXAMPLES_DIR, REPO, TARGETS, load_yaml

import provider
from provider.request.mount_request import parse_mount_request
from provider.settings import FlagError, Settings, parse_settings
from provider.tools.driver.attributes import PodInfo, build_mount_payload
from provider.tools.driver.manifests import parse_secret_provider_classes

pytestmark = pytest.mark.deploy

Objects = list[dict[str, Any]]
Rendered = Mapping[str, Objects]

# The oldest Kubernetes the manifests are for (maxSurge for DaemonSets is GA from 1.25),
# and the newest whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.25", kubernetes_validate.latest_version())
# Kinds with no schema in kubernetes-validate, and what checks them instead.
WITHOUT_SCHEMA = {"SecretProviderClass": "test_example_spc_and_pod_make_a_valid_mount_request"}

NAMESPACE = "vault-csi-provider"
HMAC_SECRET = "vault-csi-provider-hmac-key"
HEALTH_PORT = 8080
RBAC_KINDS = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
OVERLAYS = [name for name in TARGETS if name != "base"]
# Targets with the restart-state component, and where it keeps the state on the node.
WITH_STATE = {"restart-state"}
STATE_DIR = "/var/lib/vault-csi-provider"


def _of_kind(objects: Objects, kind: str) -> Objects:
    return [obj for obj in objects if obj["kind"] == kind]


def _one(objects: Objects, kind: str) -> dict[str, Any]:
    found = _of_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def _pod_spec(objects: Objects) -> dict[str, Any]:
    spec: dict[str, Any] = _one(objects, "DaemonSet")["spec"]["template"]["spec"]
    return spec


def _provider_container(objects: Objects) -> dict[str, Any]:
    containers = _pod_spec(objects)["containers"]
    assert [container["name"] for container in containers] == ["provider"]
    container: dict[str, Any] = containers[0]
    return container


def _settings(objects: Objects) -> Settings:
    return parse_settings(_provider_container(objects)["args"], environ={})


def _schema_problems(obj: dict[str, Any], version: str) -> list[str]:
    where = f"{obj.get('kind')} {obj.get('metadata', {}).get('name')!r} on Kubernetes {version}"
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(part) for part in exc.path) or "(top level)"
        return [f"{where}: {path}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        if obj.get("kind") in WITHOUT_SCHEMA:
            return []
        return [f"{where}: no schema for {obj.get('apiVersion')} {obj.get('kind')}"]
    return []


def _all_problems(objects: Objects) -> list[str]:
    return [
        problem
        for obj in objects
        for version in KUBERNETES_VERSIONS
        for problem in _schema_problems(obj, version)
    ]


# Schemas


@pytest.mark.parametrize("target", list(TARGETS))
def test_every_rendered_object_matches_the_kubernetes_schemas(rendered: Rendered, target: str) -> None:
    """Each object of each kustomization is valid, with no unknown field, on old and new Kubernetes."""
    assert rendered[target], f"{target} rendered no objects"
    assert _all_problems(rendered[target]) == []


def test_every_example_object_matches_the_kubernetes_schemas() -> None:
    """The example CSIDriver, ServiceAccount and Pod are valid objects; the SPC has no schema here."""
    objects = [obj for path in sorted(EXAMPLES_DIR.glob("*.yaml")) for obj in load_yaml(path)]
    assert {obj["kind"] for obj in objects} == {"CSIDriver", "SecretProviderClass", "ServiceAccount", "Pod"}
    assert _all_problems(objects) == []


def test_schema_validation_catches_a_misspelt_field(rendered: Rendered) -> None:
    """The validation is not vacuous: a typo in a security field is reported with its path."""
    daemonset = json.loads(json.dumps(_one(rendered["default"], "DaemonSet")))
    security = daemonset["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    security["readOnlyRootFileSystem"] = security.pop("readOnlyRootFilesystem")
    problems = _schema_problems(daemonset, KUBERNETES_VERSIONS[-1])
    assert len(problems) == 1
    assert "spec.template.spec.containers.0.securityContext" in problems[0]
    assert "'readOnlyRootFileSystem' was unexpected" in problems[0]


# Hardening, for every target


@pytest.mark.parametrize("target", list(TARGETS))
def test_container_holds_no_privilege(rendered: Rendered, target: str) -> None:
    """All capabilities dropped, none added, read-only root, no escalation, seccomp RuntimeDefault."""
    security = _provider_container(rendered[target])["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security.get("privileged", False) is False
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    # The image's non-root user; the init container makes the socket directory writable for it.
    assert (security["runAsUser"], security["runAsGroup"], security["runAsNonRoot"]) == (10001, 10001, True)


@pytest.mark.parametrize("target", list(TARGETS))
def test_init_container_opens_the_socket_directory_to_the_providers_group(
    rendered: Rendered, target: str
) -> None:
    """Root with CHOWN alone, the providers directory only; it adds the group and group write."""
    inits = {init["name"]: init for init in _pod_spec(rendered[target])["initContainers"]}
    assert sorted(inits) == (["providers-dir", "state-dir"] if target in WITH_STATE else ["providers-dir"])
    init = inits["providers-dir"]
    security = init["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN"]}
    assert (
        security["runAsUser"],
        security["readOnlyRootFilesystem"],
        security["allowPrivilegeEscalation"],
    ) == (
        0,
        True,
        False,
    )
    assert [(mount["name"], mount["mountPath"]) for mount in init["volumeMounts"]] == [
        ("providers-dir", "/provider")
    ]
    assert init["image"] == _provider_container(rendered[target])["image"]
    script = init["command"][-1]
    assert 'os.chown("/provider", -1, 10001)' in script
    assert "| 0o070" in script


@pytest.mark.parametrize("target", list(TARGETS))
def test_pod_touches_the_host_only_through_the_socket_directory(rendered: Rendered, target: str) -> None:
    """No host network, PID or IPC; the hostPaths are the providers directory at /provider, and with
    restart state its own directory."""
    spec = _pod_spec(rendered[target])
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        assert spec.get(field, False) is False, field
    host_paths = [volume for volume in spec["volumes"] if "hostPath" in volume]
    expected = {"/var/run/secrets-store-csi-providers": "/provider"}
    if target in WITH_STATE:
        expected[STATE_DIR] = STATE_DIR
    assert sorted(volume["hostPath"]["path"] for volume in host_paths) == sorted(expected)
    assert {volume["hostPath"]["type"] for volume in host_paths} == {"DirectoryOrCreate"}
    mounts = {mount["name"]: mount for mount in _provider_container(rendered[target])["volumeMounts"]}
    for volume in host_paths:
        assert mounts[volume["name"]]["mountPath"] == expected[volume["hostPath"]["path"]]
    assert all("hostPort" not in port for port in _provider_container(rendered[target])["ports"])


@pytest.mark.parametrize("target", sorted(WITH_STATE))
def test_restart_state_is_the_providers_own_owner_only_directory(rendered: Rendered, target: str) -> None:
    """--state-dir is the node directory, mounted read-write; an init container with CHOWN alone
    makes it 0700 and owned by the provider's user, and the HMAC key it is sealed with is a file."""
    objects = rendered[target]
    settings = _settings(objects)
    assert settings.state_dir == STATE_DIR
    assert settings.hmac_key_file  # zero-permission: the key the state is sealed with comes from a file
    mounts = {mount["mountPath"]: mount for mount in _provider_container(objects)["volumeMounts"]}
    assert mounts[STATE_DIR].get("readOnly", False) is False
    init = next(c for c in _pod_spec(objects)["initContainers"] if c["name"] == "state-dir")
    assert init["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN"]}
    assert init["securityContext"]["readOnlyRootFilesystem"] is True
    assert [(m["name"], m["mountPath"]) for m in init["volumeMounts"]] == [
        (mounts[STATE_DIR]["name"], "/state")
    ]
    assert init["image"] == _provider_container(objects)["image"]
    script = init["command"][-1]
    # Root must own it while the mode changes (no CAP_FOWNER), then the provider's user.
    assert script.index('os.chown("/state", 0, 0)') < script.index('os.chmod("/state", 0o700)')
    assert script.index('os.chmod("/state", 0o700)') < script.index('os.chown("/state", 10001, 10001)')


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")
def test_the_state_dir_script_works_with_chown_alone_on_every_start(
    rendered: Rendered, tmp_path: Path
) -> None:
    """Run as the init container runs it (root, CAP_CHOWN only): a fresh root-owned 0755 directory,
    then the same directory on the next pod start, already the provider's."""
    init = next(c for c in _pod_spec(rendered["restart-state"])["initContainers"] if c["name"] == "state-dir")
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    script = init["command"][-1].replace('"/state"', f'"{state}"')
    only_chown = ["setpriv", "--bounding-set=-all,+chown", "--inh-caps=-all,+chown"]
    for _start in range(2):
        subprocess.run([*only_chown, sys.executable, "-c", script], check=True, timeout=30)
        info = state.stat()
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (10001, 10001, 0o700)


@pytest.mark.parametrize("target", list(TARGETS))
def test_pod_runs_on_every_node_and_is_evicted_last(rendered: Rendered, target: str) -> None:
    """system-node-critical, and every taint tolerated, like the CSI driver itself."""
    spec = _pod_spec(rendered[target])
    assert spec["priorityClassName"] == "system-node-critical"
    assert spec["tolerations"] == [{"operator": "Exists"}]


@pytest.mark.parametrize("target", list(TARGETS))
def test_probes_and_metrics_use_the_health_port(rendered: Rendered, target: str) -> None:
    """Liveness /health/live and readiness /health/ready on 8080: where -health-addr serves, with /metrics."""
    objects = rendered[target]
    container = _provider_container(objects)
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": HEALTH_PORT}
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": HEALTH_PORT}
    assert _settings(objects).health_addr == f":{HEALTH_PORT}"
    assert {"name": "http-metrics", "containerPort": HEALTH_PORT, "protocol": "TCP"} in container["ports"]
    annotations = _one(objects, "DaemonSet")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(HEALTH_PORT)
    assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("target", list(TARGETS))
def test_update_overlaps_old_and_new_pod_and_shutdown_fits_the_grace(rendered: Rendered, target: str) -> None:
    """Surge one pod per node (the API server allows only one of maxSurge/maxUnavailable non-zero);
    the kubelet's grace outlasts the provider's own drain."""
    objects = rendered[target]
    strategy = _one(objects, "DaemonSet")["spec"]["updateStrategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    grace = _pod_spec(objects)["terminationGracePeriodSeconds"]
    assert _settings(objects).shutdown_grace_seconds == 20
    assert grace >= _settings(objects).shutdown_grace_seconds + 5


@pytest.mark.parametrize("target", list(TARGETS))
def test_every_arg_is_a_flag_the_provider_accepts(rendered: Rendered, target: str) -> None:
    """The container runs the image's entrypoint with args that parse_settings accepts."""
    objects = rendered[target]
    container = _provider_container(objects)
    assert "command" not in container, "the image's ENTRYPOINT is the provider; give only args"
    try:
        settings = _settings(objects)
    except FlagError as exc:
        pytest.fail(f"{target}: the provider refuses its args {container['args']}: {exc}")
    assert settings.endpoint == "/provider/vault.sock"
    assert (settings.log_level, settings.log_format) == ("info", "json")


@pytest.mark.parametrize("target", list(TARGETS))
def test_guard_rails_are_on(rendered: Rendered, target: str) -> None:
    """The hardened manifests refuse SPC skip-verify and keep SPC TLS files in one directory."""
    settings = _settings(rendered[target])
    assert settings.forbid_spc_skip_tls_verify is True
    assert settings.allowed_tls_directories == ("/etc/vault-csi-provider/tls",)


@pytest.mark.parametrize("target", list(TARGETS))
def test_pod_knows_its_namespace_and_has_scratch_space(rendered: Rendered, target: str) -> None:
    """POD_NAMESPACE from the downward API; /tmp writable on the read-only root; bounded resources."""
    container = _provider_container(rendered[target])
    assert {
        "name": "POD_NAMESPACE",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
    } in container["env"]
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in _pod_spec(rendered[target])["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert set(container["resources"]["limits"]) == {"memory"}


@pytest.mark.parametrize("target", list(TARGETS))
def test_image_tag_is_the_package_version(rendered: Rendered, target: str) -> None:
    """Bumping provider.__version__ without the manifests' image tag fails here."""
    assert _provider_container(rendered[target])["image"] == f"vault-csi-provider:{provider.__version__}"


@pytest.mark.parametrize("target", list(TARGETS))
def test_no_secret_is_committed(rendered: Rendered, target: str) -> None:
    """The HMAC key is made by the operator or by the provider, never shipped in a manifest."""
    assert _of_kind(rendered[target], "Secret") == []


@pytest.mark.parametrize("target", OVERLAYS)
def test_overlays_install_into_their_own_namespace(rendered: Rendered, target: str) -> None:
    """A dedicated namespace (see the default overlay's Role) holding every namespaced object."""
    objects = rendered[target]
    assert _one(objects, "Namespace")["metadata"]["name"] == NAMESPACE
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
    assert {obj["metadata"].get("namespace") for obj in objects if obj["kind"] not in cluster_scoped} == {
        NAMESPACE
    }


# What each overlay grants


def test_zero_permission_overlay_has_no_api_access(rendered: Rendered) -> None:
    """No RBAC object at all, and no service-account token in the pod."""
    objects = rendered["zero-permission"]
    assert [obj["kind"] for obj in objects if obj["kind"] in RBAC_KINDS] == []
    assert _one(objects, "ServiceAccount")["automountServiceAccountToken"] is False
    assert _pod_spec(objects)["automountServiceAccountToken"] is False


def test_zero_permission_overlay_reads_the_key_from_a_mounted_secret(rendered: Rendered) -> None:
    """-hmac-key-file points at key `key` of Secret vault-csi-provider-hmac-key, mounted read-only."""
    objects = rendered["zero-permission"]
    key_file = _settings(objects).hmac_key_file
    assert key_file == "/etc/vault-csi-provider/hmac/key"
    mount = next(
        m
        for m in _provider_container(objects)["volumeMounts"]
        if m["mountPath"] == "/etc/vault-csi-provider/hmac"
    )
    assert mount["readOnly"] is True
    volume = next(v for v in _pod_spec(objects)["volumes"] if v["name"] == mount["name"])
    assert volume["secret"] == {
        "secretName": HMAC_SECRET,
        "items": [{"key": "key", "path": "key"}],
        "defaultMode": 0o400,
    }


@pytest.mark.parametrize("target", ["default", "token-request"])
def test_role_reads_only_the_hmac_secret_and_may_create_it(rendered: Rendered, target: str) -> None:
    """get is limited by resourceNames to the Secret that -hmac-secret-name names; create cannot be."""
    objects = rendered[target]
    role = _one(objects, "Role")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [HMAC_SECRET], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
    ]
    assert _settings(objects).hmac_secret_name == HMAC_SECRET
    assert f"--hmac-secret-name={HMAC_SECRET}" in _provider_container(objects)["args"]
    binding = _one(objects, "RoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "vault-csi-provider", "namespace": NAMESPACE}
    ]


def test_default_overlay_has_no_cluster_wide_right(rendered: Rendered) -> None:
    """Pods' tokens come from the driver; nothing cluster-wide, and no TokenRequest fallback."""
    objects = rendered["default"]
    assert _of_kind(objects, "ClusterRole") == _of_kind(objects, "ClusterRoleBinding") == []
    assert _settings(objects).token_request_fallback is False


def test_token_request_overlay_may_create_service_account_tokens(rendered: Rendered) -> None:
    """ClusterRole: serviceaccounts/token create only, bound to the provider; and the flag that uses it."""
    objects = rendered["token-request"]
    cluster_role = _one(objects, "ClusterRole")
    assert cluster_role["rules"] == [
        {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}
    ]
    binding = _one(objects, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": cluster_role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "vault-csi-provider", "namespace": NAMESPACE}
    ]
    assert "--token-request-fallback" in _provider_container(objects)["args"]
    assert _settings(objects).token_request_fallback is True


# Examples


def test_example_csidriver_passes_what_the_provider_needs() -> None:
    """Pod info, a token for audience vault, republishing for rotation, inline volumes only."""
    driver = _one(load_yaml(EXAMPLES_DIR / "csidriver.yaml"), "CSIDriver")
    assert driver["metadata"]["name"] == "secrets-store.csi.k8s.io"
    spec = driver["spec"]
    assert spec["podInfoOnMount"] is True
    assert spec["requiresRepublish"] is True
    assert spec["tokenRequests"] == [{"audience": "vault"}]
    assert spec["volumeLifecycleModes"] == ["Ephemeral"]


def test_example_spc_and_pod_make_a_valid_mount_request(rendered: Rendered) -> None:
    """The example pod's volume, the SPC and the CSIDriver's tokens, combined as the driver does,
    are a Mount request the provider accepts, served over the socket the manifests create."""
    driver = _one(load_yaml(EXAMPLES_DIR / "csidriver.yaml"), "CSIDriver")
    (spc,) = parse_secret_provider_classes((EXAMPLES_DIR / "secretproviderclass.yaml").read_text())
    pod = _one(load_yaml(EXAMPLES_DIR / "pod.yaml"), "Pod")
    (volume,) = pod["spec"]["volumes"]
    (mount,) = pod["spec"]["containers"][0]["volumeMounts"]

    assert volume["csi"]["driver"] == driver["metadata"]["name"]
    assert volume["csi"]["readOnly"] is True
    assert mount["readOnly"] is True
    assert volume["csi"]["volumeAttributes"]["secretProviderClass"] == spc.name
    assert pod["metadata"]["namespace"] == spc.namespace, "the driver looks the SPC up in the pod's namespace"
    # The driver dials <providers dir>/<spec.provider>.sock.
    assert f"/provider/{spc.provider}.sock" == _settings(rendered["default"]).endpoint

    tokens = {
        request["audience"]: ("header.payload.signature", "2026-01-01T00:00:00Z")
        for request in driver["spec"]["tokenRequests"]
    }
    attributes, secrets = build_mount_payload(
        spc.parameters,
        spc_name=spc.name,
        pod=PodInfo(
            pod["metadata"]["namespace"],
            pod["metadata"]["name"],
            "0c8e2f1a-0000-4000-8000-000000000001",
            pod["spec"]["serviceAccountName"],
        ),
        tokens=tokens,
        volume_attributes=volume["csi"]["volumeAttributes"],
    )
    config = parse_mount_request(
        attributes, secrets, "/var/lib/kubelet/pods/x/volumes/kubernetes.io~csi/secrets/mount", "420"
    )
    assert config.role == "app"
    assert {obj.name: obj.file_mode for obj in config.objects} == {
        "db-username": None,
        "db-password": 0o444,
        "config/settings.json": None,
        "config/db.env": 0o444,
    }
    # The template reads secret/data/app/db like the two objects before it: one request for all three.
    assert len({request for obj in config.objects for request in obj.requests}) == 2


# The image


def _dockerfile_instruction(name: str) -> list[str]:
    lines = [line for line in (REPO / "Dockerfile").read_text().splitlines() if line.startswith(f"{name} ")]
    assert len(lines) == 1, f"expected one {name} in the Dockerfile"
    value: list[str] = json.loads(lines[0].removeprefix(f"{name} "))
    return value


def test_image_entrypoint_is_the_console_script_and_cmd_parses() -> None:
    """ENTRYPOINT is the package's console script; the default CMD args are provider flags."""
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert _dockerfile_instruction("ENTRYPOINT") == ["vault-csi-provider"]
    assert "vault-csi-provider" in scripts
    assert parse_settings(_dockerfile_instruction("CMD"), environ={}).endpoint == "/provider/vault.sock"


@pytest.mark.parametrize("target", list(TARGETS))
def test_the_openshift_scc_admits_what_the_daemonset_asks_for(rendered: Rendered, target: str) -> None:
    """examples/openshift/scc.yaml: hostPath, exactly the capability the init container adds, both
    users, and the overlays' service account (OpenShift's own schema is not available offline)."""
    (scc,) = load_yaml(EXAMPLES_DIR / "openshift" / "scc.yaml")
    spec = _pod_spec(rendered[target])
    assert scc["allowHostDirVolumePlugin"] is True
    assert any("hostPath" in volume for volume in spec["volumes"])
    added = {
        cap
        for c in spec["initContainers"] + spec["containers"]
        for cap in c["securityContext"]["capabilities"].get("add", [])
    }
    assert added == set(scc["allowedCapabilities"]) == {"CHOWN"}
    assert scc["runAsUser"] == {"type": "RunAsAny"}
    assert scc["allowPrivilegeEscalation"] is False
    assert scc["allowPrivilegedContainer"] is False
    assert scc["users"] == [f"system:serviceaccount:vault-csi-provider:{spec['serviceAccountName']}"]
