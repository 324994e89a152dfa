"""credentialScope: serviceAccount and refreshInterval, against real OpenBao and PostgreSQL.

Replicas of one workload share one kept database credential and, within a refresh
window, one static read; each pod still logs in with its own JWT first, and a pod of
another identity never gets what was kept. Evidence from outside the provider:
PostgreSQL's roles, OpenBao's lease and token stores, and the provider's /metrics.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from caching_kit import (
    Counters,
    Timeline,
    auth_role,
    database_objects,
    database_role,
    files,
    lease_id,
    lease_lookup,
    leases_under,
    new_pod,
    poll,
    role_prefix,
    username,
)
from harness import ProviderProcess, VaultEnv, unique

from devkit import PostgresServer, ServiceAccountTokenIssuer
from devkit.vault_setup import tokens_of_role
from provider.tools.driver import ProviderCallError

pytestmark = pytest.mark.integration

SHARED = {"credentialScope": "serviceAccount"}
REPLICAS = 50


def test_fifty_replicas_of_one_service_account_hold_one_database_lease(
    provider: ProviderProcess, root: Any, database: PostgresServer, issuer: ServiceAccountTokenIssuer
) -> None:
    """50 pods mounting at once get one credential from one lease, each after a login of its own."""
    db = database_role(root, database, default_ttl="1m", max_ttl="5m")
    role = auth_role(root)
    pods = [new_pod(issuer) for _ in range(REPLICAS)]
    counters = Counters(provider)
    before = counters.read()
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda pod: poll(provider, role, database_objects(db), pod, **SHARED), pods))

    assert {username(result) for result in results} == {username(results[0])}
    assert {tuple(sorted(result.versions.items())) for result in results} == {
        tuple(sorted(results[0].versions.items()))
    }
    assert leases_under(root, db.creds_path) == [lease_id(results[0])]
    assert database.count_roles(role_prefix(username(results[0]), db)) == 1
    grown = counters.since(before)
    assert grown.get("login:success") == REPLICAS, grown
    assert len(tokens_of_role(root, role)) == REPLICAS
    # A second round of polls is served from the one kept lease.
    again = [poll(provider, role, database_objects(db), pod, **SHARED) for pod in pods[:5]]
    assert {username(result) for result in again} == {username(results[0])}
    assert leases_under(root, db.creds_path) == [lease_id(results[0])]


def test_by_default_each_replica_has_its_own_credential(
    provider: ProviderProcess, root: Any, database: PostgresServer, issuer: ServiceAccountTokenIssuer
) -> None:
    """Without credentialScope (or with `pod`) every pod gets a lease of its own, as before."""
    db = database_role(root, database, default_ttl="1m", max_ttl="5m")
    role = auth_role(root)
    default, explicit = new_pod(issuer), new_pod(issuer)
    users = {
        username(poll(provider, role, database_objects(db), default)),
        username(poll(provider, role, database_objects(db), explicit, credentialScope="pod")),
    }
    assert len(users) == 2
    assert len(leases_under(root, db.creds_path)) == 2


def test_another_service_account_never_gets_the_shared_credential(
    provider: ProviderProcess, root: Any, database: PostgresServer, issuer: ServiceAccountTokenIssuer
) -> None:
    """Same role, same class, another service account: its own credential; sharing stays within each."""
    db = database_role(root, database, default_ttl="1m", max_ttl="5m")
    role = auth_role(root, service_accounts=("app", "web"))
    app = [new_pod(issuer, "app") for _ in range(2)]
    web = [new_pod(issuer, "web") for _ in range(2)]
    app_users = {username(poll(provider, role, database_objects(db), pod, **SHARED)) for pod in app}
    web_users = {username(poll(provider, role, database_objects(db), pod, **SHARED)) for pod in web}

    assert len(app_users) == 1
    assert len(web_users) == 1
    assert app_users != web_users
    assert len(leases_under(root, db.creds_path)) == 2


def test_a_pod_whose_own_login_is_refused_gets_nothing_shared(
    provider: ProviderProcess, root: Any, database: PostgresServer, issuer: ServiceAccountTokenIssuer
) -> None:
    """A replica of the workload presenting another pod's JWT is refused before anything kept is served."""
    db = database_role(root, database, default_ttl="1m", max_ttl="5m")
    role = auth_role(root)
    owner, intruder = new_pod(issuer), new_pod(issuer)
    poll(provider, role, database_objects(db), owner, **SHARED)

    with pytest.raises(ProviderCallError) as refused:
        poll(provider, role, database_objects(db), intruder, jwt=owner.jwt, **SHARED)
    assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert f"presented for pod team-a/{intruder.name} was issued for another pod" in refused.value.message
    assert len(leases_under(root, db.creds_path)) == 1


def test_the_shared_lease_is_renewed_while_any_sharer_polls(
    provider: ProviderProcess, root: Any, database: PostgresServer, issuer: ServiceAccountTokenIssuer
) -> None:
    """The pod that obtained the lease stops polling; another replica's polls renew it in place."""
    db = database_role(root, database, default_ttl="3s", max_ttl="1m")
    role = auth_role(root)
    obtainer, sharer = new_pod(issuer), new_pod(issuer)
    clock = Timeline()
    first = poll(provider, role, database_objects(db), obtainer, **SHARED)
    lease = lease_id(first)
    assert lease_lookup(root, lease)["last_renewal"] is None

    for offset in (1.0, 2.3, 3.5, 4.7):  # past 2/3 of 3 s, and past the first expiry
        clock.at(offset)
        result = poll(provider, role, database_objects(db), sharer, **SHARED)
        assert files(result) == files(first)
    assert lease_lookup(root, lease)["last_renewal"] is not None
    assert leases_under(root, db.creds_path) == [lease]
    user, password = username(first), files(first)["password"].decode()
    assert database.psql("SELECT current_user;", login=(user, password)) == user


def test_a_revoked_shared_lease_is_issued_anew_for_every_sharer(
    provider: ProviderProcess, root: Any, database: PostgresServer, issuer: ServiceAccountTokenIssuer
) -> None:
    """When the kept lease cannot be used any more, the next poll issues one successor for all replicas."""
    db = database_role(root, database, default_ttl="1m", max_ttl="5m")
    role = auth_role(root)
    pods = [new_pod(issuer) for _ in range(3)]
    first = [poll(provider, role, database_objects(db), pod, **SHARED) for pod in pods]
    root.adapter.put("/v1/sys/leases/revoke", json={"lease_id": lease_id(first[0])})

    second = [poll(provider, role, database_objects(db), pod, **SHARED) for pod in reversed(pods)]
    users = {username(result) for result in second}
    assert len(users) == 1
    assert username(first[0]) not in users
    assert leases_under(root, db.creds_path) == [lease_id(second[0])]
    assert database.count_roles(role_prefix(username(second[0]), db)) == 1


# --- refreshInterval --------------------------------------------------------------------------


def test_refresh_interval_serves_the_last_good_answer_within_the_interval(
    provider: ProviderProcess, vault: VaultEnv, root: Any, issuer: ServiceAccountTokenIssuer
) -> None:
    """A changed KV secret shows after the interval, not before; without the parameter, at once."""
    path = unique("cache/refresh")
    vault.put_kv2(path, {"value": "first"})
    objects = f"- objectName: value\n  secretPath: secret/data/{path}\n  secretKey: value\n"
    role = auth_role(root)
    pod, eager = new_pod(issuer), new_pod(issuer)
    counters = Counters(provider)
    clock = Timeline()
    first = poll(provider, role, objects, pod, refreshInterval="2s")
    before = counters.read()
    vault.put_kv2(path, {"value": "second"})

    within = poll(provider, role, objects, pod, refreshInterval="2s")
    assert files(poll(provider, role, objects, eager)) == {"value": b"second"}
    assert files(within) == files(first) == {"value": b"first"}
    assert within.versions == first.versions
    assert counters.since(before).get("read:200") == 1, "only the pod without refreshInterval read"

    clock.at(2.2)
    after = poll(provider, role, objects, pod, refreshInterval="2s")
    assert files(after) == {"value": b"second"}
    assert after.versions != first.versions


def test_sharing_and_refresh_make_one_static_read_per_window_for_all_replicas(
    provider: ProviderProcess,
    vault: VaultEnv,
    root: Any,
    database: PostgresServer,
    issuer: ServiceAccountTokenIssuer,
) -> None:
    """Ten replicas polling three times within a minute's window: one KV read, one database credential
    and no lease look-ups between them, ten logins."""
    path = unique("cache/refresh")
    vault.put_kv2(path, {"value": "v", "other": "w"})
    db = database_role(root, database, default_ttl="5m", max_ttl="10m")
    objects = (
        f"- objectName: value\n  secretPath: secret/data/{path}\n  secretKey: value\n"
        f"- objectName: other\n  secretPath: secret/data/{path}\n  secretKey: other\n" + database_objects(db)
    )
    role = auth_role(root)
    pods = [new_pod(issuer) for _ in range(10)]
    counters = Counters(provider)
    before = counters.read()
    users = set()
    for _ in range(3):
        for pod in pods:
            result = poll(provider, role, objects, pod, refreshInterval="1m", **SHARED)
            assert (files(result)["value"], files(result)["other"]) == (b"v", b"w")
            users.add(username(result))
        time.sleep(0.05)
    grown = counters.since(before)
    assert grown.get("read:200") == 2, grown  # the KV secret and the one database credential
    assert "lookup:200" not in grown, grown
    assert grown.get("login:success") == 10, grown
    assert len(users) == 1
    assert len(leases_under(root, db.creds_path)) == 1


def test_with_refresh_interval_a_revoked_lease_shows_within_the_interval(
    provider: ProviderProcess, root: Any, database: PostgresServer, issuer: ServiceAccountTokenIssuer
) -> None:
    """Lease look-ups are spaced by refreshInterval: a revocation is found at the first poll after it."""
    db = database_role(root, database, default_ttl="5m", max_ttl="10m")
    role = auth_role(root)
    pod = new_pod(issuer)
    clock = Timeline()
    first = poll(provider, role, database_objects(db), pod, refreshInterval="2s")
    root.adapter.put("/v1/sys/leases/revoke", json={"lease_id": lease_id(first)})
    within = poll(provider, role, database_objects(db), pod, refreshInterval="2s")
    assert username(within) == username(first), "no look-up within the interval"

    clock.at(2.2)
    after = poll(provider, role, database_objects(db), pod, refreshInterval="2s")
    assert username(after) != username(first)
    assert leases_under(root, db.creds_path) == [lease_id(after)]
