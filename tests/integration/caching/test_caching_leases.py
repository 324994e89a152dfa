"""Kept dynamic secrets across rotation polls, against real OpenBao and PostgreSQL.

Every Mount is a rotation poll, so these tests poll the real provider process over its
socket the way the driver does, with the same service-account JWT on every poll (the
kubelet hands the driver one token until it nears expiry). Helpers: `caching_kit`.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from caching_kit import (
    POLLS,
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
    wait_for,
)
from harness import ProviderProcess, VaultEnv, unique

from devkit import PostgresServer, ServiceAccountTokenIssuer
from devkit import vault_setup as setup
from provider.tools.driver import MountResult

pytestmark = pytest.mark.integration


# --- Database credentials: one lease, kept, renewed, replaced ---------------------------------


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


# --- PKI and KV -------------------------------------------------------------------------------


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
