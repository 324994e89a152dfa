"""Vault tokens across rotation polls: one login, renewed, replaced; revoked on eviction; caching off.

Every Mount is a rotation poll, so these tests poll the real provider process over its
socket the way the driver does, with the same service-account JWT on every poll (the
kubelet hands the driver one token until it nears expiry). Helpers: `caching_kit`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
from caching_kit import (
    NAMESPACE,
    POLLS,
    Counters,
    Timeline,
    auth_role,
    database_objects,
    database_role,
    files,
    kv_objects,
    lease_id,
    leases_under,
    new_pod,
    poll,
    role_prefix,
    username,
    wait_for,
)
from harness import ProviderProcess, StartProvider, VaultEnv, pod_uid, unique

from devkit import PostgresServer, ServiceAccountTokenIssuer
from devkit.vault_setup import tokens_of_role
from provider.tools.driver import ProviderCallError

pytestmark = pytest.mark.integration


# --- Tokens: one login, renewed, replaced when refused ----------------------------------------


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
