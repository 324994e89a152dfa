"""The official chart's arguments, JSON logs, and no error path that reveals a token or a secret.

The providers run "in a cluster" (fixtures in this directory's conftest); helpers are in `mounts`.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest
import requests
from cluster_kit import (
    PROVIDER_NAMESPACE,
    Cluster,
    Launcher,
    driver_tokens,
    health_base,
    mount_once,
    probe,
)
from harness import ProviderProcess, UnixForwarder, VaultEnv, pod_uid, unique
from mounts import NAMESPACE, app_token, kv_spc, mount, spc

from devkit import ServiceAccountTokenIssuer

pytestmark = pytest.mark.integration

DEFAULT_SECRET = "vault-csi-provider-hmac-key"
TOKENS = "serviceaccounts/token"


# --- The official chart's arguments -----------------------------------------------------------


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
