"""The TokenRequest fallback: a pod-bound token when the driver passed none, and its failures.

The providers run "in a cluster" (fixtures in this directory's conftest); helpers are in `mounts`.
"""

from __future__ import annotations

import grpc
import pytest
from cluster_kit import (
    Cluster,
    Launcher,
    mount_once,
)
from harness import ProviderProcess, VaultEnv, pod_uid, unique
from mounts import NAMESPACE, SERVICE_ACCOUNT, kv_spc, mount

from provider.tools.driver import ProviderCallError

pytestmark = pytest.mark.integration

TOKENS = "serviceaccounts/token"


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
