"""Nothing cached is shared between pods, nor served to a request carrying another pod's JWT.

Every Mount is a rotation poll, so these tests poll the real provider process over its
socket the way the driver does, with the same service-account JWT on every poll (the
kubelet hands the driver one token until it nears expiry). Helpers: `caching_kit`.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from caching_kit import (
    SERVICE_ACCOUNT,
    Counters,
    auth_role,
    database_objects,
    database_role,
    files,
    kv_objects,
    new_pod,
    poll,
    role_prefix,
    username,
)
from harness import ProviderProcess, VaultEnv

from devkit import PostgresServer, ServiceAccountTokenIssuer
from devkit.vault_setup import tokens_of_role
from provider.tools.driver import MountResult, ProviderCallError

pytestmark = pytest.mark.integration


# --- Nothing shared between pods --------------------------------------------------------------


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
