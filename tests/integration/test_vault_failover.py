"""Failover on a real three-node OpenBao raft cluster, through the provider process.

One cluster for the module (about 12 s to start on two cores). The provider lists the
nodes with the leader first: it sticks to the leader, so stopping the leader makes the
node it talks to disappear mid-poll, which is the case failover is for. Polls keep
coming every ~200 ms for three pods: two present the same token on every poll (a
rotation poll: cached Vault token, KV reads only) and one a new token each time (a pod
starting: a login). During the election OpenBao's standbys still serve KV reads but
answer logins with a 307 to the dead leader; the provider follows that into the listed
node, finds it down, and goes on to the next one, round after round until a leader is
elected. The tests that stop a node bring it back before they end, so the order of the
tests does not matter.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import hvac.exceptions
import pytest
import requests
from cluster_kit import health_base, metric_samples
from harness import ProviderProcess, StartProvider, backend_unavailable, unique
from mounts import NAMESPACE, SERVICE_ACCOUNT, app_token, contents, kv_spc, mount, mount_error

from devkit import BackendMissing, FakeApiServer, OpenBaoRaftCluster, free_port
from devkit import vault_setup as setup

pytestmark = pytest.mark.integration

POLICY = 'path "secret/data/failover/*" { capabilities = ["read"] }'
SECRET_PATH = "failover/db"
SECRET = {"value": "raft-replicated-value"}
POLL_SECONDS = 0.2
# A Mount's deadline as the driver gives it (its default gRPC timeout is far longer).
MOUNT_DEADLINE_SECONDS = 30.0


@pytest.fixture(scope="module")
def raft(apiserver: FakeApiServer) -> Iterator[OpenBaoRaftCluster]:
    """Three raft nodes with kubernetes auth (role `app` for team-a/app) and a KV v2 secret."""
    cluster = OpenBaoRaftCluster()
    try:
        cluster.start()
    except BackendMissing as exc:
        backend_unavailable(exc)
    try:
        root = cluster.client()
        setup.write_policy(root, "failover", POLICY)
        setup.enable_kubernetes_auth(root, "kubernetes", apiserver.url)
        setup.kubernetes_role(root, "kubernetes", "app", ["app"], ["team-a"], ["failover"], ttl="10m")
        setup.enable_kv(root, "secret", version=2)
        _wait_readable_everywhere(cluster, root)
        print(f"\nraft cluster up in {cluster.startup_seconds:.1f} s")
        yield cluster
    finally:
        pids = [node.proc.pid for node in cluster.nodes if node.proc is not None]
        cluster.stop()
    assert not [pid for pid in pids if _alive(pid)], "the cluster left bao processes behind"
    assert not cluster.scratch.exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_readable_everywhere(cluster: OpenBaoRaftCluster, root: object) -> None:
    """A new KV v2 mount answers 400 ("waiting for the primary to upgrade") on standbys for a moment."""
    ends = time.monotonic() + 30
    while True:
        try:
            setup.put_kv(root, "secret", SECRET_PATH, SECRET)
            for index in range(cluster.size):
                cluster.client(index).secrets.kv.v2.read_secret_version(
                    path=SECRET_PATH, mount_point="secret", raise_on_deleted_version=True
                )
            return
        except (hvac.exceptions.VaultError, requests.RequestException):
            if time.monotonic() > ends:
                raise
            time.sleep(0.2)


def leader_first(cluster: OpenBaoRaftCluster) -> list[str]:
    leader = cluster.wait_leader()
    return [cluster.addresses[leader], *(a for i, a in enumerate(cluster.addresses) if i != leader)]


@dataclass(frozen=True)
class Poll:
    """One Mount of the loop: when it started (seconds after the loop began), how long, how it ended."""

    pod: str
    started: float
    seconds: float
    error: str = ""


def _poll_once(provider: ProviderProcess, pod: str, token: str | None, began: float) -> Poll:
    started = time.monotonic()
    try:
        result = mount(provider, kv_spc(SECRET_PATH), pod_name=pod, token=token)
    except Exception as exc:
        return Poll(pod, started - began, time.monotonic() - started, str(exc))
    assert contents(result) == {"value": SECRET["value"].encode()}
    return Poll(pod, started - began, time.monotonic() - started)


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_mounts_survive_losing_the_leader(
    raft: OpenBaoRaftCluster, start_provider: StartProvider, how: str
) -> None:
    """Stopping the leader mid-poll: every Mount succeeds in its deadline; at most one fails, and its
    immediate retry succeeds."""
    order = leader_first(raft)
    leader = raft.addresses.index(order[0])
    provider = start_provider(vault_addr=",".join(order))
    steady = {pod: app_token(provider.issuer, pod) for pod in ("app-0", "app-1")}
    polls: list[Poll] = []
    retried: list[Poll] = []
    began = time.monotonic()
    stopped_at = elected_at = 0.0
    try:
        while not elected_at or time.monotonic() - began < elected_at + 1.5:
            for pod in ("app-0", "app-1", "app-2"):
                poll = _poll_once(provider, pod, steady.get(pod), began)
                polls.append(poll)
                if poll.error:
                    retry = _poll_once(provider, pod, steady.get(pod), began)
                    retried.append(retry)
                    assert not retry.error, f"the retry of a failed Mount failed too: {retry.error}"
            if not stopped_at and time.monotonic() - began > 1.0:
                stopped_at = time.monotonic() - began
                raft.send_signal(leader, getattr(signal, how))  # returns at once: polls go on
            if stopped_at and not elected_at and raft.leader_index() is not None:
                elected_at = time.monotonic() - began
            time.sleep(POLL_SECONDS)
            assert time.monotonic() - began < 60, "no new leader within a minute"
    finally:
        raft.restart(leader)
        raft.wait_healthy()
    after = [poll for poll in polls if poll.started + poll.seconds >= stopped_at]
    failed = [poll for poll in polls if poll.error]
    print(
        f"\n{how} leader at {stopped_at:.2f} s; new leader seen at {elected_at:.2f} s "
        f"({elected_at - stopped_at:.2f} s); {len(polls)} Mounts, {len(after)} during or after; "
        f"slowest during the failover {max(poll.seconds for poll in after):.2f} s; "
        f"first Mount finished after the stop in {after[0].started + after[0].seconds - stopped_at:.2f} s; "
        f"failed: {[poll.error for poll in failed]}"
    )
    assert len(failed) <= 1, failed
    assert len(retried) == len(failed)
    assert all(poll.seconds < MOUNT_DEADLINE_SECONDS for poll in polls + retried)
    assert any(poll.pod == "app-2" and poll.started > elected_at for poll in polls), (
        "no login after the election"
    )
    assert "failed over (" in provider.log_text()


def test_a_sealed_first_node_is_skipped(raft: OpenBaoRaftCluster, start_provider: StartProvider) -> None:
    """A sealed standby listed first answers 503: the Mount goes on to the next node and succeeds."""
    leader = raft.wait_leader()
    sealed = next(index for index in range(raft.size) if index != leader)
    raft.seal(sealed)
    try:
        others = [address for index, address in enumerate(raft.addresses) if index != sealed]
        provider = start_provider(vault_addr=",".join([raft.addresses[sealed], *others]))
        assert contents(mount(provider, kv_spc(SECRET_PATH))) == {"value": SECRET["value"].encode()}
        assert f"Vault node {raft.addresses[sealed]} failed over (sealed)" in provider.log_text()
        samples = metric_samples(requests.get(f"{health_base(provider)}/metrics", timeout=5).text)
        assert samples[("vault_csi_provider_vault_failovers_total", frozenset({("reason", "sealed")}))] == 1
    finally:
        raft.unseal(sealed)
        raft.wait_healthy()


def test_spc_vault_address_list(raft: OpenBaoRaftCluster, provider: ProviderProcess) -> None:
    """An SPC's vaultAddress list (its first node refusing connections) is used instead of -vault-addr."""
    nobody = f"http://127.0.0.1:{free_port()}"
    parameters = kv_spc(SECRET_PATH, vaultAddress=",".join([nobody, *raft.addresses]))
    assert contents(mount(provider, parameters, pod_name=unique("spc-list"))) == {
        "value": SECRET["value"].encode()
    }


def test_redirect_to_an_address_not_allowed_is_refused(
    raft: OpenBaoRaftCluster, provider: ProviderProcess
) -> None:
    """A standby whose leader just died redirects logins to it; not listed or allowed, so not followed."""
    leader = raft.wait_leader()
    standby = next(index for index in range(raft.size) if index != leader)
    dead = raft.addresses[leader].removeprefix("http://")
    raft.kill(leader)
    try:
        error = mount_error(
            provider, kv_spc(SECRET_PATH, vaultAddress=raft.addresses[standby]), pod_name=unique("redirect")
        )
    finally:
        raft.restart(leader)
        raft.wait_healthy()
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    where = f"{raft.addresses[standby]} (from vaultAddress in the SecretProviderClass)"
    assert error.message == (
        f'login to Vault at {where} with role "app" on auth mount "kubernetes" as service account '
        f"{NAMESPACE}/{SERVICE_ACCOUNT} failed: Vault at {where} redirected the request (307) to {dead}, "
        "which is not one of its addresses or -allowed-vault-addresses; list the cluster's nodes in the "
        "address, or put a load balancer in front of Vault"
    )
