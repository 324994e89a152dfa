"""Rotation polls against real OpenBao and PostgreSQL: kept leases, cached tokens, nothing shared.

Every Mount is a rotation poll, so these tests poll the real provider process over its
socket the way the driver does, with the same service-account JWT on every poll (the
kubelet hands the driver one token until it nears expiry). Each test gets its own
Vault roles and mounts under `cache/` with TTLs of a few seconds, so renewal points,
max TTLs and token expiry are reached within the test; the evidence comes from
outside the provider: PostgreSQL's roles, OpenBao's lease and token stores (read with
the root token), and the provider's own /metrics for login counts.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc
import hvac.exceptions
import pytest
import requests
from cluster_kit import health_base, metric_samples
from harness import ProviderProcess, StartProvider, VaultEnv, pod_uid, unique

from devkit import PostgresServer, ServiceAccountTokenIssuer
from devkit import vault_setup as setup
from provider.tools.driver import MountResult, ProviderCallError

pytestmark = pytest.mark.integration

NAMESPACE = "team-a"
SERVICE_ACCOUNT = "app"
POLICY = "caching"
POLICY_HCL = """
path "cache/*" { capabilities = ["read", "create", "update"] }
path "secret/data/cache/*" { capabilities = ["read"] }
"""
POLLS = 5


# --- Vault set-up per test -----------------------------------------------------------------


@pytest.fixture(scope="module")
def root(vault: VaultEnv) -> Any:
    """The root client, with the policy every role of this module grants."""
    setup.write_policy(vault.root, POLICY, POLICY_HCL)
    return vault.root


def auth_role(
    root: Any,
    *,
    ttl: str = "10m",
    max_ttl: str | None = None,
    service_accounts: tuple[str, ...] = (SERVICE_ACCOUNT,),
) -> str:
    """A new kubernetes auth role for team-a with the module's policy; returns its name."""
    role = unique("cache")
    body: dict[str, Any] = {
        "bound_service_account_names": list(service_accounts),
        "bound_service_account_namespaces": [NAMESPACE],
        "token_policies": [POLICY],
        "audience": "vault",
        "token_ttl": ttl,
    }
    if max_ttl is not None:
        body["token_max_ttl"] = max_ttl
    root.adapter.post(f"/v1/auth/kubernetes/role/{role}", json=body)
    return role


@dataclass(frozen=True)
class DatabaseRole:
    mount: str
    role: str  # 8 characters: PostgreSQL user names start v-<display>-<role>-

    @property
    def creds_path(self) -> str:
        return f"{self.mount}/creds/{self.role}"


def database_role(root: Any, postgres: PostgresServer, default_ttl: str, max_ttl: str) -> DatabaseRole:
    """A database mount of its own under cache/ with one role issuing PostgreSQL logins."""
    name = "c" + uuid.uuid4().hex[:7]
    mount = f"cache/db-{name}"
    setup.enable_database(
        root,
        mount,
        postgres.vault_connection_url,
        postgres.superuser,
        postgres.password,
        name,
        default_ttl=default_ttl,
        max_ttl=max_ttl,
    )
    return DatabaseRole(mount, name)


def database_objects(db: DatabaseRole) -> str:
    """username and password from one lease, and the whole envelope (it carries the lease id)."""
    return (
        f"- objectName: username\n  secretPath: {db.creds_path}\n  secretKey: username\n"
        f"- objectName: password\n  secretPath: {db.creds_path}\n  secretKey: password\n"
        f"- objectName: lease.json\n  secretPath: {db.creds_path}\n"
    )


def leases_under(root: Any, prefix: str) -> list[str]:
    """The ids of the live leases under `prefix`, from OpenBao's lease store."""
    try:
        listed = root.adapter.list(f"/v1/sys/leases/lookup/{prefix}/")
    except hvac.exceptions.InvalidPath:
        return []
    return [f"{prefix}/{key}" for key in listed["data"]["keys"]]


def lease_lookup(root: Any, lease_id: str) -> dict[str, Any]:
    data: dict[str, Any] = root.adapter.put("/v1/sys/leases/lookup", json={"lease_id": lease_id})["data"]
    return data


def tokens_of_role(root: Any, role: str) -> list[dict[str, Any]]:
    """Every live token OpenBao issued for a kubernetes auth role (lookup-accessor data)."""
    accessors = root.adapter.list("/v1/auth/token/accessors")["data"]["keys"]
    tokens = []
    for accessor in accessors:
        try:
            data = root.adapter.post("/v1/auth/token/lookup-accessor", json={"accessor": accessor})["data"]
        except hvac.exceptions.InvalidRequest:
            continue  # expired between the list and the lookup
        if (data.get("meta") or {}).get("role") == role:
            tokens.append(data)
    return tokens


# --- Pods and polls ------------------------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    """A pod and the service-account JWT the kubelet hands the driver for it."""

    name: str
    service_account: str
    jwt: str


def new_pod(issuer: ServiceAccountTokenIssuer, service_account: str = SERVICE_ACCOUNT) -> Pod:
    name = unique("pod")
    jwt = issuer.mint(NAMESPACE, service_account, name, pod_uid(NAMESPACE, name), audiences=["vault"])
    return Pod(name, service_account, jwt)


def poll(
    process: ProviderProcess, role: str, objects: str, pod: Pod, *, jwt: str | None = None
) -> MountResult:
    """One rotation poll (a Mount) for `pod`; `jwt` replaces the pod's own token (a forged request)."""
    return process.mount(
        {"roleName": role, "objects": objects},
        namespace=NAMESPACE,
        service_account=pod.service_account,
        pod_name=pod.name,
        token=jwt or pod.jwt,
    )


def files(result: MountResult) -> dict[str, bytes]:
    return {file.path: file.contents for file in result.files}


def username(result: MountResult) -> str:
    return files(result)["username"].decode()


def lease_id(result: MountResult) -> str:
    lease: str = json.loads(files(result)["lease.json"])["lease_id"]
    assert lease, "the database answer carried no lease"
    return lease


def role_prefix(user: str, db: DatabaseRole) -> str:
    """The PostgreSQL user-name prefix of every credential of `db` (v-<display>-<role>-)."""
    assert f"-{db.role}-" in user, user
    return user[: user.index(f"-{db.role}-") + len(db.role) + 2]


class Timeline:
    """Sleeps to points in time measured from its start, so waits do not add up drift."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    def at(self, seconds: float) -> None:
        time.sleep(max(0.0, self.start + seconds - time.monotonic()))

    def elapsed(self) -> float:
        return time.monotonic() - self.start


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.1)


class Counters:
    """Counters from the provider's /metrics: logins and Vault requests by kind."""

    def __init__(self, process: ProviderProcess) -> None:
        self._url = f"{health_base(process)}/metrics"

    def read(self) -> dict[str, float]:
        samples = metric_samples(requests.get(self._url, timeout=5).text)
        counts: dict[str, float] = {}
        for (name, labels), value in samples.items():
            label = dict(labels)
            if name == "vault_csi_provider_vault_logins_total":
                key = f"login:{label['result']}"
            elif name == "vault_csi_provider_vault_requests_total":
                key = f"{label['kind']}:{label['status']}"
            else:
                continue
            counts[key] = counts.get(key, 0.0) + value
        return counts

    def since(self, before: dict[str, float]) -> dict[str, float]:
        """What grew since `before`, zeros left out."""
        now = self.read()
        return {key: value - before.get(key, 0.0) for key, value in now.items() if value != before.get(key)}


# --- Database credentials: one lease, kept, renewed, replaced -----------------------------


def test_database_credential_is_kept_across_polls(
    provider: ProviderProcess, root: Any, database: PostgresServer, issuer: ServiceAccountTokenIssuer
) -> None:
    """N polls give byte-identical files and versions from one lease: one PostgreSQL role, one lease."""
    db = database_role(root, database, default_ttl="1m", max_ttl="5m")
    role = auth_role(root)
    pod = new_pod(issuer)
    results = [poll(provider, role, database_objects(db), pod) for _ in range(POLLS)]

    first = results[0]
    for result in results[1:]:
        assert files(result) == files(first)
        assert result.versions == first.versions
    user = username(first)
    assert database.count_roles(role_prefix(user, db)) == 1
    assert leases_under(root, db.creds_path) == [lease_id(first)]
    password = files(first)["password"].decode()
    assert database.psql("SELECT current_user;", login=(user, password)) == user


def test_lease_is_renewed_in_place_past_two_thirds(
    provider: ProviderProcess, root: Any, database: PostgresServer, issuer: ServiceAccountTokenIssuer
) -> None:
    """A poll past 2/3 of the lease renews it: same user and files, a later expiry, still one role."""
    db = database_role(root, database, default_ttl="3s", max_ttl="1m")
    role = auth_role(root)
    pod = new_pod(issuer)
    clock = Timeline()
    first = poll(provider, role, database_objects(db), pod)
    lease = lease_id(first)
    before = lease_lookup(root, lease)
    assert before["last_renewal"] is None

    clock.at(2.3)  # refresh point: 2 s
    second = poll(provider, role, database_objects(db), pod)
    after = lease_lookup(root, lease)

    assert files(second) == files(first)
    assert second.versions == first.versions
    assert after["last_renewal"] is not None
    assert after["expire_time"] > before["expire_time"]
    # Renewed by the full default TTL from now, not shortened: 3 s left again, the old lease had < 1 s.
    assert after["ttl"] >= 2
    assert database.count_roles(role_prefix(username(first), db)) == 1
    assert leases_under(root, db.creds_path) == [lease]

    # Past the old expiry the credential still works: the renewal was real.
    clock.at(3.5)
    third = poll(provider, role, database_objects(db), pod)
    assert files(third) == files(first)
    user, password = username(first), files(first)["password"].decode()
    assert database.psql("SELECT current_user;", login=(user, password)) == user


def test_new_credential_and_version_after_max_ttl(
    provider: ProviderProcess, root: Any, database: PostgresServer, issuer: ServiceAccountTokenIssuer
) -> None:
    """Renewed until the max TTL stops extending it, then a new user and a new version; the old one goes."""
    db = database_role(root, database, default_ttl="2s", max_ttl="5s")
    role = auth_role(root)
    pod = new_pod(issuer)
    clock = Timeline()
    first = poll(provider, role, database_objects(db), pod)
    old_user = username(first)

    changed: tuple[float, MountResult] | None = None
    step = 0
    while changed is None and clock.elapsed() < 8:
        step += 1
        clock.at(0.6 * step)
        result = poll(provider, role, database_objects(db), pod)
        if username(result) != old_user:
            changed = (clock.elapsed(), result)
        else:
            assert files(result) == files(first)
            assert result.versions == first.versions
    assert changed is not None, "no new credential within 8 s of a 5 s max TTL"
    when, renewed = changed

    # Kept through at least two renewals (2 s default TTL), replaced before or at the max TTL.
    assert when > 2.5
    assert renewed.versions["username"] != first.versions["username"]
    assert renewed.versions["password"] != first.versions["password"]
    assert files(renewed)["password"] != files(first)["password"]
    prefix = role_prefix(old_user, db)
    wait_for(lambda: not database.user_exists(old_user), 4, "the old user dropped at its max TTL")
    assert database.count_roles(prefix) == 1
    assert leases_under(root, db.creds_path) == [lease_id(renewed)]


def test_revoked_lease_is_replaced_on_the_next_poll(
    provider: ProviderProcess, root: Any, database: PostgresServer, issuer: ServiceAccountTokenIssuer
) -> None:
    """An operator revokes the lease: the very next poll brings a new, working credential."""
    db = database_role(root, database, default_ttl="1m", max_ttl="5m")
    role = auth_role(root)
    pod = new_pod(issuer)
    first = poll(provider, role, database_objects(db), pod)
    assert poll(provider, role, database_objects(db), pod).versions == first.versions

    root.adapter.put("/v1/sys/leases/revoke", json={"lease_id": lease_id(first)})
    assert not database.user_exists(username(first))
    second = poll(provider, role, database_objects(db), pod)

    user, password = username(second), files(second)["password"].decode()
    assert user != username(first)
    assert second.versions["username"] != first.versions["username"]
    assert database.psql("SELECT current_user;", login=(user, password)) == user
    assert database.count_roles(role_prefix(user, db)) == 1
    assert leases_under(root, db.creds_path) == [lease_id(second)]
    # And the replacement is kept in turn.
    assert poll(provider, role, database_objects(db), pod).versions == second.versions


# --- PKI and KV -----------------------------------------------------------------------------


def test_pki_certificate_is_reused_until_its_renewal_point(
    provider: ProviderProcess, root: Any, issuer: ServiceAccountTokenIssuer
) -> None:
    """The same certificate (serial, files, versions) until 2/3 of its validity, then a new one."""
    mount = f"cache/pki-{uuid.uuid4().hex[:8]}"
    setup.enable_pki(root, mount, "web", ["example.test"], max_ttl="6s")
    role = auth_role(root)
    pod = new_pod(issuer)
    objects = "".join(
        f"- objectName: {name}\n  secretPath: {mount}/issue/web\n  method: PUT\n  secretKey: {key}\n"
        "  secretArgs:\n    common_name: cache.example.test\n"
        for name, key in [("tls.crt", "certificate"), ("tls.key", "private_key"), ("serial", "serial_number")]
    )
    clock = Timeline()
    first = poll(provider, role, objects, pod)
    for offset in (1.0, 2.5):  # the renewal point lies between 3.3 s and 4 s
        clock.at(offset)
        result = poll(provider, role, objects, pod)
        assert files(result) == files(first)
        assert result.versions == first.versions

    clock.at(4.3)
    renewed = poll(provider, role, objects, pod)
    assert files(renewed)["serial"] != files(first)["serial"]
    assert files(renewed)["tls.key"] != files(first)["tls.key"]
    assert renewed.versions["tls.crt"] != first.versions["tls.crt"]
    assert poll(provider, role, objects, pod).versions == renewed.versions


def test_changed_kv_secret_is_read_on_the_next_poll(
    provider: ProviderProcess,
    vault: VaultEnv,
    root: Any,
    database: PostgresServer,
    issuer: ServiceAccountTokenIssuer,
) -> None:
    """KV is never kept: a new value shows on the next poll, while the database credential stays."""
    path = unique("cache/kv")
    vault.put_kv2(path, {"value": "first"})
    db = database_role(root, database, default_ttl="1m", max_ttl="5m")
    role = auth_role(root)
    pod = new_pod(issuer)
    objects = (
        f"- objectName: value\n  secretPath: secret/data/{path}\n  secretKey: value\n" + database_objects(db)
    )
    first = poll(provider, role, objects, pod)
    vault.put_kv2(path, {"value": "second"})
    second = poll(provider, role, objects, pod)

    assert files(first)["value"] == b"first"
    assert files(second)["value"] == b"second"
    assert second.versions["value"] != first.versions["value"]
    assert username(second) == username(first)
    assert second.versions["username"] == first.versions["username"]


# --- Tokens: one login, renewed, replaced when refused ----------------------------------------


def kv_objects(vault: VaultEnv) -> str:
    path = unique("cache/token")
    vault.put_kv2(path, {"value": "v"})
    return f"- objectName: value\n  secretPath: secret/data/{path}\n  secretKey: value\n"


def test_warm_polls_do_not_log_in(
    provider: ProviderProcess,
    vault: VaultEnv,
    root: Any,
    database: PostgresServer,
    issuer: ServiceAccountTokenIssuer,
) -> None:
    """N polls of one pod: one login and one credential issued; later polls only read KV and look up."""
    db = database_role(root, database, default_ttl="1m", max_ttl="5m")
    role = auth_role(root)
    pod = new_pod(issuer)
    objects = kv_objects(vault) + database_objects(db)
    counters = Counters(provider)
    before = counters.read()
    poll(provider, role, objects, pod)
    after_first = counters.read()
    for _ in range(POLLS - 1):
        poll(provider, role, objects, pod)

    assert counters.since(before).get("login:success") == 1
    warm = counters.since(after_first)
    # Each warm poll: the KV read and one lease lookup; no login, no renewal, no new credential.
    assert warm == {"read:200": POLLS - 1, "lookup:200": POLLS - 1}
    assert len(tokens_of_role(root, role)) == 1


def test_token_near_its_ttl_is_renewed_not_replaced(
    provider: ProviderProcess, root: Any, database: PostgresServer, issuer: ServiceAccountTokenIssuer
) -> None:
    """A 3 s token is renewed (renew-self) at each refresh point; the credential it obtained lives on."""
    db = database_role(root, database, default_ttl="1m", max_ttl="5m")
    role = auth_role(root, ttl="3s")
    pod = new_pod(issuer)
    counters = Counters(provider)
    before = counters.read()
    clock = Timeline()
    first = poll(provider, role, database_objects(db), pod)
    for offset in (2.2, 4.6):  # refresh points at ~2 s and ~4.2 s; the original token ended at 3 s
        clock.at(offset)
        result = poll(provider, role, database_objects(db), pod)
        assert files(result) == files(first)
        assert result.versions == first.versions

    grown = counters.since(before)
    assert grown.get("login:success") == 1
    assert grown.get("renew:200") == 2
    (token,) = tokens_of_role(root, role)
    assert token["last_renewal_time"] > token["creation_time"]
    # Had the token expired, OpenBao would have revoked the credential with it.
    user, password = username(first), files(first)["password"].decode()
    assert database.psql("SELECT current_user;", login=(user, password)) == user
    assert leases_under(root, db.creds_path) == [lease_id(first)]


def test_token_capped_by_its_max_ttl_is_replaced_by_a_login(
    provider: ProviderProcess, vault: VaultEnv, root: Any, issuer: ServiceAccountTokenIssuer
) -> None:
    """Renewal stops extending a token at its max TTL: one new login before it ends, no failed poll."""
    role = auth_role(root, ttl="2s", max_ttl="4s")
    pod = new_pod(issuer)
    objects = kv_objects(vault)
    counters = Counters(provider)
    before = counters.read()
    clock = Timeline()
    for step in range(8):  # 0 .. 4.9 s
        clock.at(0.7 * step)
        poll(provider, role, objects, pod)

    grown = counters.since(before)
    assert grown.get("login:success") == 2
    assert grown.get("renew:200", 0) >= 1
    assert "read:403" not in grown


def test_token_vault_no_longer_accepts_leads_to_one_relogin(
    provider: ProviderProcess,
    vault: VaultEnv,
    root: Any,
    database: PostgresServer,
    issuer: ServiceAccountTokenIssuer,
) -> None:
    """The cached token is revoked (and its credential with it): one re-login, the Mount succeeds."""
    db = database_role(root, database, default_ttl="1m", max_ttl="5m")
    role = auth_role(root)
    pod = new_pod(issuer)
    objects = kv_objects(vault) + database_objects(db)
    counters = Counters(provider)
    before = counters.read()
    first = poll(provider, role, objects, pod)
    (token,) = tokens_of_role(root, role)

    root.adapter.post("/v1/auth/token/revoke-accessor", json={"accessor": token["accessor"]})
    assert not database.user_exists(username(first))
    second = poll(provider, role, objects, pod)

    assert counters.since(before).get("login:success") == 2
    (new_token,) = tokens_of_role(root, role)
    assert new_token["accessor"] != token["accessor"]
    user, password = username(second), files(second)["password"].decode()
    assert user != username(first)
    assert database.psql("SELECT current_user;", login=(user, password)) == user
    # The new token is cached in turn.
    third = poll(provider, role, objects, pod)
    assert counters.since(before).get("login:success") == 2
    assert third.versions == second.versions


def test_concurrent_first_mounts_of_one_pod_log_in_once(
    provider: ProviderProcess, root: Any, database: PostgresServer, issuer: ServiceAccountTokenIssuer
) -> None:
    """Eight Mounts of a new pod at once (several volumes, a retry): one login, one credential."""
    db = database_role(root, database, default_ttl="1m", max_ttl="5m")
    role = auth_role(root)
    pod = new_pod(issuer)
    counters = Counters(provider)
    before = counters.read()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: poll(provider, role, database_objects(db), pod), range(8)))

    assert {username(result) for result in results} == {username(results[0])}
    assert counters.since(before).get("login:success") == 1
    assert database.count_roles(role_prefix(username(results[0]), db)) == 1
    assert len(tokens_of_role(root, role)) == 1


def test_rotated_pod_jwt_keeps_the_database_credential(
    provider: ProviderProcess, root: Any, database: PostgresServer, issuer: ServiceAccountTokenIssuer
) -> None:
    """The kubelet rotating the pod's JWT does not flip a credential that can still be renewed.

    The kubelet refreshes a projected token at 80% of its life (about hourly) and the driver
    passes the new one. The credential must live on until its own max TTL, also after the
    Vault token's first TTL (2 s here) has passed: the new JWT proves the same identity, so
    the first token, which owns the lease, stays in use and is renewed. Polls come every
    0.4 s, a fifth of the token's TTL, as a 1-2 minute poll interval is of a usual token_ttl.
    """
    db = database_role(root, database, default_ttl="1m", max_ttl="5m")
    role = auth_role(root, ttl="2s")
    pod = new_pod(issuer)
    first = poll(provider, role, database_objects(db), pod)
    rotated = issuer.mint(NAMESPACE, pod.service_account, pod.name, pod_uid(NAMESPACE, pod.name))
    clock = Timeline()
    for offset in (0.4, 0.8, 1.2, 1.6, 2.0, 2.4, 2.8, 3.2):
        clock.at(offset)
        result = poll(provider, role, database_objects(db), pod, jwt=rotated)
        assert username(result) == username(first), f"the credential flipped {clock.elapsed():.1f} s in"
        assert result.versions == first.versions
    assert database.user_exists(username(first))


def test_persistently_denied_object_does_not_log_in_on_every_poll(
    provider: ProviderProcess, vault: VaultEnv, root: Any, issuer: ServiceAccountTokenIssuer
) -> None:
    """An SPC naming a path the role may not read fails every poll, without a new login (and token) each time.

    A 403 with a cached token earns one re-login and one retry (the token may have been
    revoked); when the fresh token is refused too the denial is real, and later polls must
    not log in again. The kubelet retries a failed Mount with backoff: a login per retry is
    the login storm that grew upstream's Vault.
    """
    role = auth_role(root)
    forbidden = unique("forbidden/cache")
    vault.put_kv2(forbidden, {"value": "v"})
    objects = (
        kv_objects(vault)
        + f"- objectName: other\n  secretPath: secret/data/{forbidden}\n  secretKey: value\n"
    )
    pod = new_pod(issuer)
    counters = Counters(provider)
    before = counters.read()
    for _ in range(POLLS):
        with pytest.raises(ProviderCallError) as denied:
            poll(provider, role, objects, pod)
        assert denied.value.code == grpc.StatusCode.PERMISSION_DENIED
        assert f'objects[1] "other": GET /v1/secret/data/{forbidden} was denied (403)' in denied.value.message

    logins = counters.since(before).get("login:success")
    live_tokens = len(tokens_of_role(root, role))
    summary = f"{logins} logins and {live_tokens} live tokens for {POLLS} polls"
    assert logins is not None
    assert logins <= 2, summary
    assert live_tokens <= 2, summary


# --- Nothing shared between pods ------------------------------------------------------------


def test_pods_never_share_a_token_or_a_credential(
    provider: ProviderProcess, root: Any, database: PostgresServer, issuer: ServiceAccountTokenIssuer
) -> None:
    """Two pods of one service account and a pod of another: three tokens, three credentials."""
    db = database_role(root, database, default_ttl="1m", max_ttl="5m")
    role = auth_role(root, service_accounts=(SERVICE_ACCOUNT, "worker"))
    pods = [new_pod(issuer), new_pod(issuer), new_pod(issuer, "worker")]
    first = [poll(provider, role, database_objects(db), pod) for pod in pods]
    again = [poll(provider, role, database_objects(db), pod) for pod in pods]

    users = [username(result) for result in first]
    assert len(set(users)) == 3
    assert [username(result) for result in again] == users
    assert len({files(result)["password"] for result in first}) == 3
    assert database.count_roles(role_prefix(users[0], db)) == 3
    tokens = tokens_of_role(root, role)
    assert len(tokens) == 3
    assert len({token["accessor"] for token in tokens}) == 3


def test_request_with_another_pods_jwt_does_not_ride_the_cached_token(
    provider: ProviderProcess, vault: VaultEnv, root: Any, issuer: ServiceAccountTokenIssuer
) -> None:
    """Claiming pod A with another pod's JWT never rides A's token.

    A JWT of an account the role does not bind is refused by Vault at login; a JWT of
    A's own account but bound to pod B logs in (Vault checks it) and is then refused,
    because its pod claim is not A.
    """
    role = auth_role(root)
    objects = kv_objects(vault)
    pod_a = new_pod(issuer)
    counters = Counters(provider)
    before = counters.read()
    poll(provider, role, objects, pod_a)

    intruder = new_pod(issuer, "intruder")
    with pytest.raises(ProviderCallError) as denied:
        poll(provider, role, objects, pod_a, jwt=intruder.jwt)
    assert denied.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert f'with role "{role}" on auth mount "kubernetes"' in denied.value.message
    assert "was denied (HTTP 403): service account name not authorized" in denied.value.message

    # Pod B of the same account: its own login, then refused for claiming pod A.
    pod_b = new_pod(issuer)
    with pytest.raises(ProviderCallError) as mismatched:
        poll(provider, role, objects, pod_a, jwt=pod_b.jwt)
    assert mismatched.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert "was issued for another pod" in mismatched.value.message
    grown = counters.since(before)
    assert grown.get("login:success") == 2
    assert grown.get("login:denied") == 1
    assert len(tokens_of_role(root, role)) == 2
    # Pod A's own token is still served from the cache.
    poll(provider, role, objects, pod_a)
    assert counters.since(before).get("login:success") == 2


def test_request_with_another_pods_jwt_is_not_served_the_claimed_pods_credential(
    provider: ProviderProcess, root: Any, database: PostgresServer, issuer: ServiceAccountTokenIssuer
) -> None:
    """Claiming pod A with pod B's JWT (same service account) does not hand out A's kept credential.

    Vault would never let B's token read A's password; the kept answer must not either.
    Refusing the mismatched request outright is fine too.
    """
    db = database_role(root, database, default_ttl="1m", max_ttl="5m")
    role = auth_role(root)
    pod_a, pod_b = new_pod(issuer), new_pod(issuer)
    own = poll(provider, role, database_objects(db), pod_a)
    outcome: MountResult | ProviderCallError
    try:
        outcome = poll(provider, role, database_objects(db), pod_a, jwt=pod_b.jwt)
    except ProviderCallError as exc:
        outcome = exc
    if isinstance(outcome, ProviderCallError):
        assert outcome.code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT)
    else:
        served, kept = username(outcome), username(own)
        assert served != kept, f"pod B's JWT was served pod A's credential {kept}"
        assert files(outcome)["password"] != files(own)["password"]
    # Pod A itself is undisturbed.
    assert poll(provider, role, database_objects(db), pod_a).versions == own.versions


# --- Revocation on eviction -------------------------------------------------------------------


def test_revoke_on_evict_revokes_every_token_the_cache_lets_go_of(
    start_provider: StartProvider, vault: VaultEnv, root: Any, issuer: ServiceAccountTokenIssuer
) -> None:
    """With -token-revoke-on-evict and room for one token, an evicted token is revoked in Vault.

    That holds for a token from a re-login too (after Vault refused the cached one).
    """
    process = start_provider("-cache-size=1", "-token-revoke-on-evict")
    role = auth_role(root)
    objects = kv_objects(vault)
    pod_a, pod_b = new_pod(issuer), new_pod(issuer)

    poll(process, role, objects, pod_a)
    (token_a,) = tokens_of_role(root, role)
    poll(process, role, objects, pod_b)  # evicts A's token
    wait_for(lambda: len(tokens_of_role(root, role)) == 1, 3, "A's evicted token revoked")
    (token_b,) = tokens_of_role(root, role)
    assert token_b["accessor"] != token_a["accessor"]

    root.adapter.post("/v1/auth/token/revoke-accessor", json={"accessor": token_b["accessor"]})
    poll(process, role, objects, pod_b)  # refused, so a re-login
    (relogin_b,) = tokens_of_role(root, role)
    poll(process, role, objects, pod_a)  # evicts B's token from the re-login
    wait_for(
        lambda: relogin_b["accessor"] not in {t["accessor"] for t in tokens_of_role(root, role)},
        3,
        "B's evicted token (from a re-login) revoked",
    )


# --- Caching off ------------------------------------------------------------------------------


def test_cache_size_zero_logs_in_and_issues_on_every_poll(
    start_provider: StartProvider, root: Any, database: PostgresServer, issuer: ServiceAccountTokenIssuer
) -> None:
    """With -cache-size=0 every poll logs in and gets a new credential (upstream's behaviour)."""
    process = start_provider("-cache-size=0")
    db = database_role(root, database, default_ttl="1m", max_ttl="5m")
    role = auth_role(root)
    pod = new_pod(issuer)
    counters = Counters(process)
    results = [poll(process, role, database_objects(db), pod) for _ in range(3)]

    grown = counters.read()
    assert grown.get("login:success") == 3
    assert grown.get("lookup:200") is None
    users = [username(result) for result in results]
    assert len(set(users)) == 3
    assert len({result.versions["username"] for result in results}) == 3
    assert database.count_roles(role_prefix(users[0], db)) == 3
    assert len(tokens_of_role(root, role)) == 3
