"""Mounts shaped as secrets-store-sync-controller sends them, against real OpenBao and PostgreSQL.

The controller (kubernetes-sigs/secrets-store-sync-controller, internal/controller and
pkg/provider, pkg/token) calls Mount itself, with no pod behind the volume:

- `attributes`: the SPC's parameters, then `csi.storage.k8s.io/pod.name` and `pod.uid`
  of the controller's own pod (its SYNC_CONTROLLER_POD_NAME/UID), `pod.namespace` the
  SecretSync's namespace and `serviceAccount.name` its `spec.serviceAccountName`, and
  `serviceAccount.tokens` for each `--token-request-audience`; no `secretProviderClass`
  and no `csi.storage.k8s.io/ephemeral` key;
- the token: a TokenRequest for that service account, 600 s, one audience, without a
  boundObjectRef, so it names no pod (and no node);
- `secrets` "{}", `permission` "420" (0644), `target_path` "/mnt/secrets-store", no
  current object versions.

Every SecretSync of every service account comes through the same controller pod name and
UID, so nothing kept may be keyed by the pod alone.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from caching_kit import (
    NAMESPACE,
    auth_role,
    database_objects,
    database_role,
    files,
    role_prefix,
    username,
)
from harness import ProviderProcess, VaultEnv, unique

from devkit import PostgresServer, ServiceAccountTokenIssuer
from devkit.vault_setup import tokens_of_role
from provider.request.jwt_claims import jwt_claims
from provider.tools.driver import MountResult

pytestmark = pytest.mark.integration

CONTROLLER_POD = "secrets-store-sync-controller-7c9d8b5f4-q2w8z"
CONTROLLER_UID = str(uuid.uuid4())
TARGET_PATH = "/mnt/secrets-store"
PERMISSION = "420"  # json.Marshal(os.FileMode(0644))


def unbound_token(issuer: ServiceAccountTokenIssuer, service_account: str, audience: str = "vault") -> str:
    """The controller's TokenRequest: the service account's token, 600 s, bound to no pod."""
    token = issuer.mint(NAMESPACE, service_account, None, None, audiences=[audience], ttl_seconds=600)
    assert set(jwt_claims(token)["kubernetes.io"]) == {"namespace", "serviceaccount"}
    return token


def sync(
    provider: ProviderProcess, parameters: dict[str, str], service_account: str, token: str
) -> MountResult:
    """One SecretSync reconcile: the controller's Mount for `service_account` in team-a."""
    expires = (datetime.now(UTC) + timedelta(seconds=600)).strftime("%Y-%m-%dT%H:%M:%SZ")
    attributes = {
        **parameters,
        "csi.storage.k8s.io/pod.name": CONTROLLER_POD,
        "csi.storage.k8s.io/pod.uid": CONTROLLER_UID,
        "csi.storage.k8s.io/pod.namespace": NAMESPACE,
        "csi.storage.k8s.io/serviceAccount.name": service_account,
        "csi.storage.k8s.io/serviceAccount.tokens": json.dumps(
            {"vault": {"token": token, "expirationTimestamp": expires}}
        ),
    }
    provider.tokens.append(token)
    result = provider.client.mount(json.dumps(attributes), "{}", TARGET_PATH, PERMISSION)
    provider.contents.extend(file.contents for file in result.files)
    return result


def test_sync_controller_request_reads_kv(
    provider: ProviderProcess, vault: VaultEnv, issuer: ServiceAccountTokenIssuer
) -> None:
    """The exact shape of the controller's request mounts: a token without a pod claim is accepted."""
    path = unique("app/sync")
    vault.put_kv2(path, {"value": "synced-value"})
    objects = f"- objectName: value\n  secretPath: secret/data/{path}\n  secretKey: value\n"
    result = sync(provider, {"roleName": "app", "objects": objects}, "app", unbound_token(issuer, "app"))
    assert files(result) == {"value": b"synced-value"}
    assert list(result.versions) == ["value"]


def test_identities_through_one_controller_pod_stay_apart(
    provider: ProviderProcess, root: Any, database: PostgresServer, issuer: ServiceAccountTokenIssuer
) -> None:
    """Two SecretSyncs of two service accounts, one controller pod: two Vault tokens, two database users.

    Each identity's next reconcile is served its own kept credential, never the other's.
    """
    db = database_role(root, database, default_ttl="1m", max_ttl="5m")
    role = auth_role(root, service_accounts=("app", "worker"))
    parameters = {"roleName": role, "objects": database_objects(db)}
    tokens = {account: unbound_token(issuer, account) for account in ("app", "worker")}

    first = {account: sync(provider, parameters, account, token) for account, token in tokens.items()}
    again = {account: sync(provider, parameters, account, token) for account, token in tokens.items()}

    assert username(first["app"]) != username(first["worker"])
    assert files(first["app"])["password"] != files(first["worker"])["password"]
    assert {account: username(result) for account, result in again.items()} == {
        account: username(result) for account, result in first.items()
    }
    assert database.count_roles(role_prefix(username(first["app"]), db)) == 2
    issued = tokens_of_role_by_account(root, role)
    assert sorted(issued) == ["app", "worker"]
    assert len(set(issued.values())) == 2


def tokens_of_role_by_account(root: Any, role: str) -> dict[str, str]:
    """service account name → accessor of each live Vault token of `role` (one each, or this fails)."""
    by_account: dict[str, str] = {}
    for token in tokens_of_role(root, role):
        account = token["meta"]["service_account_name"]
        assert account not in by_account, f"two tokens for {account}"
        by_account[account] = token["accessor"]
    return by_account


def test_a_service_account_name_with_another_accounts_token_poisons_nothing(
    provider: ProviderProcess, root: Any, database: PostgresServer, issuer: ServiceAccountTokenIssuer
) -> None:
    """A request naming `worker` but carrying app's token is app (Vault says so), and worker's own
    token then still gets worker's own credential, not the one kept under the name `worker`.
    """
    db = database_role(root, database, default_ttl="1m", max_ttl="5m")
    role = auth_role(root, service_accounts=("app", "worker"))
    parameters = {"roleName": role, "objects": database_objects(db)}
    app, worker = unbound_token(issuer, "app"), unbound_token(issuer, "worker")

    app_user = username(sync(provider, parameters, "app", app))
    assert username(sync(provider, parameters, "worker", app)) == app_user
    worker_user = username(sync(provider, parameters, "worker", worker))
    assert worker_user != app_user
    assert username(sync(provider, parameters, "app", app)) == app_user
    assert database.count_roles(role_prefix(app_user, db)) == 2
