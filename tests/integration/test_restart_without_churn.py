"""Restart without churn (`-state-dir`): the provider process restarted between two Mounts of one pod.

Real OpenBao (with a file audit device, so the evidence comes from Vault's side),
real PostgreSQL, and the provider as a real process on its socket. The pod presents
the same service-account JWT before and after the restart, as the kubelet does until
it rotates the token. After a restart the pod gets the same bytes and versions and
Vault sees no login, no new database credential and no new certificate; a state file
that does not verify, a token revoked while the provider was down, or another HMAC
key each cost one fresh login, never a stale answer.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from harness import ProviderProcess, StartProvider, backend_unavailable, pod_uid, unique, write_key_file
from mounts import NAMESPACE, SERVICE_ACCOUNT, contents, spc

from bench.audit import AuditCounts, AuditLog
from devkit import BackendMissing, FakeApiServer, OpenBaoServer, PostgresServer, ServiceAccountTokenIssuer
from devkit import vault_setup as setup
from provider.tools.driver import MountResult

pytestmark = pytest.mark.integration

POLICY_HCL = """
path "secret/data/restart/*" { capabilities = ["read"] }
path "pki/issue/web" { capabilities = ["create", "update"] }
path "database/creds/*" { capabilities = ["read"] }
"""
DB_ROLE = "rstate01"  # PostgreSQL users v-<display>-rstate01-…: no other suite counts these
STATE_FILE = "state.bin"


@dataclass(frozen=True)
class Audited:
    """An OpenBao of this module's own, with a file audit device, configured like the session one."""

    bao: OpenBaoServer
    root: Any
    audit: AuditLog

    def window(self) -> AuditCounts:
        """What Vault recorded since the previous window."""
        time.sleep(0.2)  # the device writes the response line just before answering
        return self.audit.take()


@pytest.fixture(scope="module")
def audited(apiserver: FakeApiServer, postgres: PostgresServer) -> Iterator[Audited]:
    bao = OpenBaoServer(audit=True)
    try:
        bao.start()
    except BackendMissing as exc:
        backend_unavailable(exc)
    try:
        root = bao.client()
        setup.write_policy(root, "restart", POLICY_HCL)
        setup.enable_kubernetes_auth(root, "kubernetes", apiserver.url)
        setup.enable_kv(root, "secret", version=2)
        setup.enable_pki(root, "pki", "web", ["example.test"])
        setup.enable_database(
            root,
            "database",
            postgres.vault_connection_url,
            postgres.superuser,
            postgres.password,
            DB_ROLE,
            default_ttl="10m",
            max_ttl="1h",
        )
        assert bao.audit_log_path is not None
        yield Audited(bao, root, AuditLog(bao.audit_log_path))
    finally:
        bao.stop()


@dataclass(frozen=True)
class Pod:
    name: str
    role: str
    jwt: str
    parameters: dict[str, str]


def new_pod(audited: Audited, issuer: ServiceAccountTokenIssuer) -> Pod:
    """A pod with a Vault role of its own (its token can be found): a credential, a cert, a KV secret."""
    role = unique("restart")
    setup.kubernetes_role(
        audited.root, "kubernetes", role, [SERVICE_ACCOUNT], [NAMESPACE], ["restart"], ttl="1h"
    )
    kv_path = unique("restart/app")
    audited.root.secrets.kv.v2.create_or_update_secret(
        path=kv_path, secret={"api-key": "k-" + uuid.uuid4().hex}
    )
    objects = f"""
        - objectName: username
          secretPath: database/creds/{DB_ROLE}
          secretKey: username
        - objectName: password
          secretPath: database/creds/{DB_ROLE}
          secretKey: password
        - objectName: tls.crt
          secretPath: pki/issue/web
          method: PUT
          secretArgs:
            common_name: app.example.test
            ttl: 1h
          secretKey: certificate
        - objectName: tls.key
          secretPath: pki/issue/web
          method: PUT
          secretArgs:
            common_name: app.example.test
            ttl: 1h
          secretKey: private_key
        - objectName: api-key
          secretPath: secret/data/{kv_path}
          secretKey: api-key
        """
    name = unique("pod")
    jwt = issuer.mint(NAMESPACE, SERVICE_ACCOUNT, name, pod_uid(NAMESPACE, name), audiences=["vault"])
    return Pod(name, role, jwt, spc(objects, role=role))


def mount(process: ProviderProcess, pod: Pod) -> MountResult:
    return process.mount(
        pod.parameters, namespace=NAMESPACE, service_account=SERVICE_ACCOUNT, pod_name=pod.name, token=pod.jwt
    )


def serial(result: MountResult) -> int:
    return x509.load_pem_x509_certificate(contents(result)["tls.crt"]).serial_number


@dataclass
class Node:
    """One node's provider: its directory (socket, log, state) and its HMAC key file, across restarts."""

    directory: Path
    key_file: Path
    start_provider: StartProvider
    address: str

    @property
    def state_file(self) -> Path:
        return self.directory / "state" / STATE_FILE

    def start(self) -> ProviderProcess:
        return self.start_provider(
            f"-state-dir={self.directory / 'state'}",
            vault_addr=self.address,
            key_file=self.key_file,
            directory=self.directory,
        )

    def mount_and_stop(self, pod: Pod) -> MountResult:
        """One provider life: start, mount the pod, SIGTERM (the last save happens in the drain)."""
        process = self.start()
        result = mount(process, pod)
        assert process.stop() == 0, process.log_text()
        return result

    def warnings(self, process: ProviderProcess) -> list[str]:
        return [line for line in process.log_text().splitlines() if " WARNING " in line]


@pytest.fixture
def node(tmp_path: Path, start_provider: StartProvider, audited: Audited) -> Node:
    return Node(tmp_path, write_key_file(tmp_path / "hmac.key"), start_provider, audited.bao.address)


def assert_no_churn(counts: AuditCounts) -> None:
    """No login, no new credential, certificate or token: only lookups of what was kept (and the KV read)."""
    assert counts.requests["login"] == 0, counts
    assert counts.requests["issue"] == 0, counts
    assert dict(counts.new) == {}, counts
    assert counts.requests["read"] == 1, counts  # the KV secret, read afresh on every poll


def assert_same(after: MountResult, before: MountResult) -> None:
    assert contents(after) == contents(before)
    assert after.versions == before.versions
    assert serial(after) == serial(before)


def test_after_a_sigterm_restart_the_pod_gets_the_same_bytes_without_a_login(
    node: Node, audited: Audited, issuer: ServiceAccountTokenIssuer, postgres: PostgresServer
) -> None:
    pod = new_pod(audited, issuer)
    before = node.mount_and_stop(pod)
    assert node.state_file.exists()
    audited.window()

    second = node.start()
    after = mount(second, pod)
    assert_no_churn(audited.window())
    assert_same(after, before)
    user = contents(after)["username"].decode()
    assert postgres.count_roles(user) == 1
    assert node.warnings(second) == []
    # Neither the log nor the state file shows a secret or the pod's JWT.
    state = node.state_file.read_bytes()
    for secret in [*contents(after).values(), pod.jwt.encode()]:
        assert secret.decode() not in second.log_text()
        assert secret not in state


def test_after_a_sigkill_the_writer_had_already_saved(
    node: Node, audited: Audited, issuer: ServiceAccountTokenIssuer
) -> None:
    pod = new_pod(audited, issuer)
    first = node.start()
    before = mount(first, pod)
    deadline = time.monotonic() + 15
    while not node.state_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert node.state_file.exists(), "the writer did not save within 15 s"
    first.kill()
    audited.window()

    second = node.start()
    after = mount(second, pod)
    assert_no_churn(audited.window())
    assert_same(after, before)


def test_a_file_that_is_not_a_state_file_is_ignored_with_one_warning(
    node: Node, audited: Audited, issuer: ServiceAccountTokenIssuer
) -> None:
    node.state_file.parent.mkdir(mode=0o700)
    node.state_file.write_bytes(b"\x7fELF" + bytes(200))
    process = node.start()
    (warning,) = node.warnings(process)
    assert warning.endswith(
        f"ignoring the restart state {node.state_file}: it is not a provider state file "
        "(unknown header); starting empty"
    )
    pod = new_pod(audited, issuer)
    audited.window()
    assert sorted(contents(mount(process, pod))) == ["api-key", "password", "tls.crt", "tls.key", "username"]
    assert audited.window().requests["login"] == 1


def test_a_damaged_state_file_is_ignored_with_one_warning(
    node: Node, audited: Audited, issuer: ServiceAccountTokenIssuer
) -> None:
    """Written by this node's key, then one byte flipped: it does not verify, the provider serves anyway."""
    pod = new_pod(audited, issuer)
    node.mount_and_stop(pod)
    data = bytearray(node.state_file.read_bytes())
    data[-20] ^= 0x01
    node.state_file.write_bytes(bytes(data))

    second = node.start()
    (warning,) = node.warnings(second)
    assert warning.endswith(
        f"ignoring the restart state {node.state_file}: it does not verify "
        "(corrupt, truncated or tampered with); starting empty"
    )
    audited.window()
    mount(second, pod)
    assert audited.window().requests["login"] == 1


def test_a_token_revoked_while_the_provider_was_down_costs_one_login_and_nothing_stale(
    node: Node, audited: Audited, issuer: ServiceAccountTokenIssuer, postgres: PostgresServer
) -> None:
    """The restored token fails its lookup: a fresh login, a new credential and certificate."""
    pod = new_pod(audited, issuer)
    before = node.mount_and_stop(pod)
    (token,) = setup.tokens_of_role(audited.root, pod.role)
    audited.root.adapter.post("/v1/auth/token/revoke-accessor", json={"accessor": token["accessor"]})
    old_user = contents(before)["username"].decode()
    deadline = time.monotonic() + 10
    while postgres.count_roles(old_user) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert postgres.count_roles(old_user) == 0  # the credential died with the token
    audited.window()

    second = node.start()
    after = mount(second, pod)
    counts = audited.window()
    assert counts.requests["login"] == 1, counts
    assert counts.new["tokens"] == 1, counts
    assert counts.requests["issue"] == 2, counts  # a new credential and a new certificate
    assert contents(after)["username"].decode() != old_user
    assert serial(after) != serial(before)
    assert contents(after)["api-key"] == contents(before)["api-key"]


def test_a_state_file_of_another_hmac_key_is_ignored(
    node: Node, audited: Audited, issuer: ServiceAccountTokenIssuer
) -> None:
    pod = new_pod(audited, issuer)
    before = node.mount_and_stop(pod)
    write_key_file(node.key_file)  # another key: as if the file came from another cluster

    second = node.start()
    (warning,) = node.warnings(second)
    assert warning.endswith(
        f"ignoring the restart state {node.state_file}: it was written under another HMAC key; starting empty"
    )
    audited.window()
    after = mount(second, pod)
    counts = audited.window()
    assert counts.requests["login"] == 1, counts
    assert contents(after)["username"] != contents(before)["username"]
