"""The versions' HMAC key in a cluster: created immutable, shared, retried, refused clearly; or a file.

The providers run "in a cluster" (fixtures in this directory's conftest); helpers are in `mounts`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cluster_kit import (
    PROVIDER_NAMESPACE,
    Cluster,
    Launcher,
)
from harness import ProviderProcess, VaultEnv, unique
from mounts import kv_spc, mount

pytestmark = pytest.mark.integration

DEFAULT_SECRET = "vault-csi-provider-hmac-key"
SECRETS = "secrets"


# --- HMAC key from a Kubernetes Secret --------------------------------------------------------


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
