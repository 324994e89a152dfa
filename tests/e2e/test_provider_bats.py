"""HashiCorp's own acceptance tests (vault-csi-provider test/bats/provider.bats, v1.7.4), ported.

Each test names the bats test it comes from. The set-up follows the bats file's: roles
db-role, kv-role, pki-role, all-role and kv-custom-audience-role bound to service accounts
nginx-* in namespace `test`, a JWT role on the API server's OIDC discovery, PKI role
example-dot-com, KV v2 secrets kv1, kv2, kv-sync1..3, and the SecretProviderClasses of its
configs/ (the sync, database and all-types ones over TLS with a client certificate, as
there). What bats reads with `kubectl exec cat` is read from the volume as the driver
wrote it; the environment-variable checks (`printenv`, from a synced Secret) need a
container runtime and are left out, the Secret itself is checked instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import E2eVault, ProviderUnderTest
from cryptography import x509
from driver import DriverProcess
from kube_api import KubeApi, wait_for
from kubelet import Kubelet
from scenario_kit import (
    MountedPod,
    create_namespace,
    create_service_account,
    decoded,
    failed_mount_events,
    objects_yaml,
    pod_manifest,
    replica_set,
    secret_provider_class,
    status_versions,
)

from devkit import PostgresServer
from devkit import vault_setup as setup

NS = "test"
NODE = "e2e-node"
KV_POLICY = 'path "secret/data/kv*" { capabilities = ["read"] }'
DB_POLICY = 'path "database/creds/test-role" { capabilities = ["read"] }'
PKI_POLICY = 'path "pki/issue/example-dot-com" { capabilities = ["create", "update"] }'
CUSTOM_AUDIENCE_POLICY = 'path "secret/data/kv-custom-audience" { capabilities = ["read"] }'
KV_OBJECTS = objects_yaml(
    """
    - objectName: "secret-1"
      secretPath: "secret/data/kv1"
      secretKey: "bar1"
      filePermission: 0624
    - objectName: "secret-2"
      secretPath: "secret/data/kv2"
      secretKey: "bar2"
    """
)
PKI_OBJECT = """
- objectName: "certs"
  secretPath: "pki/issue/example-dot-com"
  secretArgs:
    common_name: "test.example.com"
    ttl: "24h"
  method: "PUT"
"""
DB_OBJECTS = """
- objectName: "dbUsername"
  secretPath: "database/creds/test-role"
  secretKey: "username"
- objectName: "dbPassword"
  secretPath: "database/creds/test-role"
  secretKey: "password"
"""


@dataclass(frozen=True)
class Bats:
    api: KubeApi
    kubelet: Kubelet
    driver: DriverProcess
    vault: E2eVault
    tls: dict[str, str]  # vaultAddress and the TLS file parameters of the sync/db/all classes

    def run(self, name: str, service_account: str, volumes: dict[str, str], **kwargs: Any) -> MountedPod:
        return MountedPod.run(
            self.api,
            self.kubelet,
            self.driver,
            pod_manifest(NS, name, service_account, volumes, NODE, **kwargs),
        )


@pytest.fixture(scope="module")
def bats(
    api: KubeApi, kubelet: Kubelet, driver: DriverProcess, e2e_vault: E2eVault, postgres: PostgresServer
) -> Iterator[Bats]:
    root = e2e_vault.root
    for name, hcl in [("kv-policy", KV_POLICY), ("db-policy", DB_POLICY), ("pki-policy", PKI_POLICY),
                      ("kv-custom-audience-policy", CUSTOM_AUDIENCE_POLICY)]:  # fmt: skip
        setup.write_policy(root, name, hcl)
    create_namespace(api, NS)
    for account, role, policies, audience in [
        ("nginx-db", "db-role", ["db-policy"], "vault"),
        ("nginx-kv", "kv-role", ["kv-policy"], "vault"),
        (
            "nginx-kv-custom-audience",
            "kv-custom-audience-role",
            ["kv-custom-audience-policy"],
            "custom-audience",
        ),
        ("nginx-pki", "pki-role", ["pki-policy"], "vault"),
        ("nginx-all", "all-role", ["db-policy", "kv-policy", "pki-policy"], "vault"),
    ]:
        create_service_account(api, NS, account)
        setup.kubernetes_role(
            root, "kubernetes", role, [account], [NS], policies, audience=audience, ttl="20m"
        )
    root.write(
        "auth/jwt/role/jwt-kv-role", role_type="jwt", bound_audiences="vault", user_claim="sub",
        bound_subject=f"system:serviceaccount:{NS}:nginx-kv", token_policies="kv-policy", ttl="1h",
    )  # fmt: skip
    setup.enable_pki(root, "pki", "example-dot-com", ["example.com"])
    setup.enable_database(
        root, "database", postgres.vault_connection_url, postgres.superuser, postgres.password, "test-role"
    )
    for path, data in [("kv1", {"bar1": "hello1"}), ("kv2", {"bar2": "hello2"}),
                       ("kv-sync1", {"bar1": "hello-sync1"}), ("kv-sync2", {"bar2": "hello-sync2"}),
                       ("kv-sync3", {"bar3": "aGVsbG8tc3luYzM="}),
                       ("kv-custom-audience", {"bar": "hello-custom-audience"})]:  # fmt: skip
        e2e_vault.put(path, data)
    client_cert, client_key = e2e_vault.server.issue_client_cert("csi-provider")
    tls = {
        "vaultAddress": e2e_vault.tls_address,
        "vaultTLSServerName": "vault.e2e.test",
        "vaultCACertPath": str(e2e_vault.server.ca_pem_path),
        "vaultTLSClientCertPath": str(client_cert),
        "vaultTLSClientKeyPath": str(client_key),
    }
    spc = lambda name, parameters, **kw: secret_provider_class(api, NS, name, parameters, **kw)  # noqa: E731
    spc("vault-kv", {"roleName": "kv-role", "audience": "vault", "objects": KV_OBJECTS})
    spc("vault-kv-jwt-auth", {"roleName": "jwt-kv-role", "vaultAuthMountPath": "jwt", "objects": KV_OBJECTS})
    spc("vault-pki", {"roleName": "pki-role", "objects": objects_yaml(PKI_OBJECT), **tls})
    spc("vault-db", {"roleName": "db-role", "objects": objects_yaml(DB_OBJECTS), **tls})
    spc(
        "vault-all",
        {"roleName": "all-role", "objects": objects_yaml(DB_OBJECTS + PKI_OBJECT + """
- objectName: "secret-1"
  secretPath: "secret/data/kv1"
  secretKey: "bar1"
"""), **tls},
    )  # fmt: skip
    spc(
        "vault-kv-custom-audience",
        {"roleName": "kv-custom-audience-role", "audience": "custom-audience",
         "objects": objects_yaml('- objectName: "secret"\n  secretPath: "secret/data/kv-custom-audience"\n'
                                 '  secretKey: "bar"\n')},
    )  # fmt: skip
    sync_objects = objects_yaml(
        """
        - objectName: "secret-1"
          secretPath: "/v1/secret/data/kv-sync1"
          secretKey: "bar1"
        - objectName: "secret-2"
          secretPath: "v1/secret/data/kv-sync2"
          secretKey: "bar2"
        - objectName: "secret-3"
          secretPath: "/v1/secret/data/kv-sync3"
          secretKey: "bar3"
          encoding: "base64"
        """
    )
    spc(
        "vault-kv-sync",
        {"roleName": "kv-role", "objects": sync_objects, **tls},
        secret_objects=[
            {
                "secretName": "kvsecret",
                "type": "Opaque",
                "labels": {"environment": "test"},
                "data": [
                    {"objectName": "secret-1", "key": "pwd"},
                    {"objectName": "secret-2", "key": "username"},
                    {"objectName": "secret-3", "key": "username_b64"},
                ],
            }
        ],
    )
    for index, (object_name, key) in enumerate([("secret-1", "username"), ("secret-2", "pwd")], start=1):
        spc(
            f"vault-kv-sync-{index}",
            {"roleName": "kv-role", "objects": sync_objects, **tls},
            secret_objects=[
                {
                    "secretName": f"kvsecret-{index}",
                    "type": "Opaque",
                    "data": [{"objectName": object_name, "key": key}],
                }
            ],
        )
    return Bats(api, kubelet, driver, e2e_vault, tls)


def test_1_inline_secrets_store_csi_volume(bats: Bats) -> None:
    """bats 1: an inline volume; the per-object filePermission 0624 and the default 0644."""
    pod = bats.run("nginx-kv", "nginx-kv", {"secrets-store-inline": "vault-kv"})
    assert pod.read("secrets-store-inline", "secret-1") == b"hello1"
    assert pod.mode("secrets-store-inline", "secret-1") == 0o624
    assert pod.read("secrets-store-inline", "secret-2") == b"hello2"
    assert pod.mode("secrets-store-inline", "secret-2") == 0o644
    pod.delete()


def test_2_sync_with_kubernetes_secrets(bats: Bats) -> None:
    """bats 2: a Secret synced from the files, labelled, owned by the ReplicaSet, deleted with it."""
    api = bats.api
    owner = replica_set(api, NS, "nginx-kv-env-var")
    pod = bats.run(
        "nginx-kv-env-var-1", "nginx-kv", {"secrets-store-inline": "vault-kv-sync"}, owners=[owner]
    )
    assert pod.read("secrets-store-inline", "secret-1") == b"hello-sync1"
    assert pod.read("secrets-store-inline", "secret-2") == b"hello-sync2"
    secret_path = f"/api/v1/namespaces/{NS}/secrets/kvsecret"
    secret = wait_for(lambda: api.get(secret_path), 60, "Secret kvsecret synced")
    assert decoded(secret, "pwd") == "hello-sync1"
    assert decoded(secret, "username") == "hello-sync2"
    assert decoded(secret, "username_b64") == "hello-sync3"
    assert secret["metadata"]["labels"]["environment"] == "test"
    assert secret["metadata"]["labels"]["secrets-store.csi.k8s.io/managed"] == "true"
    owners = wait_for(
        lambda: api.get(secret_path)["metadata"].get("ownerReferences"),
        60,
        "kvsecret owned by the ReplicaSet",
    )
    assert [(o["kind"], o["name"]) for o in owners] == [("ReplicaSet", "nginx-kv-env-var")]
    # Trigger deletion implicitly by deleting only owners.
    api.delete(f"/apis/apps/v1/namespaces/{NS}/replicasets/nginx-kv-env-var", propagation="Background")
    wait_for(lambda: not api.exists(secret_path), 90, "kvsecret deleted with its owner")
    bats.kubelet.wait_gone(NS, "nginx-kv-env-var-1")


def test_3_secretproviderclass_in_different_namespace_not_usable(bats: Bats) -> None:
    """bats 3: a pod in another namespace naming `vault-kv` fails to mount, and the event says why."""
    other = create_namespace(bats.api, "negative-test-ns")
    create_service_account(bats.api, other, "nginx-kv")
    bats.api.apply(pod_manifest(other, "nginx-kv", "nginx-kv", {"secrets-store-inline": "vault-kv"}, NODE))
    message = failed_mount_events(bats.kubelet, other, "nginx-kv", "failed to get secretproviderclass")
    assert "failed to get secretproviderclass negative-test-ns/vault-kv" in message
    assert "not found" in message
    bats.api.delete(f"/api/v1/namespaces/{other}/pods/nginx-kv")
    bats.kubelet.wait_gone(other, "nginx-kv")


def test_4_pod_with_multiple_secretproviderclasses(bats: Bats) -> None:
    """bats 4: two volumes from two classes in one pod, each synced to its own Secret."""
    pod = bats.run(
        "nginx-multiple-volumes",
        "nginx-kv",
        {"secrets-store-1": "vault-kv-sync-1", "secrets-store-2": "vault-kv-sync-2"},
    )
    assert pod.read("secrets-store-1", "secret-1") == b"hello-sync1"
    assert pod.read("secrets-store-2", "secret-2") == b"hello-sync2"
    first = wait_for(lambda: bats.api.get(f"/api/v1/namespaces/{NS}/secrets/kvsecret-1"), 60, "kvsecret-1")
    second = wait_for(lambda: bats.api.get(f"/api/v1/namespaces/{NS}/secrets/kvsecret-2"), 60, "kvsecret-2")
    assert decoded(first, "username") == "hello-sync1"
    assert decoded(second, "pwd") == "hello-sync2"
    pod.delete()


def _certificates(envelope: bytes) -> tuple[x509.Certificate, x509.Certificate]:
    data = json.loads(envelope)["data"]
    return (
        x509.load_pem_x509_certificate(data["certificate"].encode()),
        x509.load_pem_x509_certificate(data["issuing_ca"].encode()),
    )


def test_5_secretproviderclass_with_query_parameters_and_put_method(bats: Bats) -> None:
    """bats 5: PKI issue by PUT with secretArgs; without secretKey the whole answer is the file."""
    pod = bats.run("nginx-pki", "nginx-pki", {"secrets-store-inline": "vault-pki"})
    certificate, issuing_ca = _certificates(pod.read("secrets-store-inline", "certs"))
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "test.example.com" in names.get_values_for_type(x509.DNSName)
    assert certificate.issuer == issuing_ca.subject
    pod.delete()


def _logs_in(postgres: PostgresServer, pod: MountedPod) -> None:
    username = pod.read("secrets-store-inline", "dbUsername").decode()
    password = pod.read("secrets-store-inline", "dbPassword").decode()
    seen = postgres.psql("SELECT current_user", login=(username, password))
    assert seen.strip() == username


def test_6_dynamic_secrets_engine_endpoint_is_called_only_once_per_secretproviderclass(
    bats: Bats, postgres: PostgresServer
) -> None:
    """bats 6: username and password come from one credential, which logs in to PostgreSQL."""
    pod = bats.run("nginx-db", "nginx-db", {"secrets-store-inline": "vault-db"})
    _logs_in(postgres, pod)
    pod.delete()


def test_7_secretproviderclass_with_multiple_secret_types(bats: Bats, postgres: PostgresServer) -> None:
    """bats 7: a database credential, a certificate and a KV value in one class."""
    pod = bats.run("nginx-all", "nginx-all", {"secrets-store-inline": "vault-all"})
    _logs_in(postgres, pod)
    assert pod.read("secrets-store-inline", "secret-1") == b"hello1"
    certificate, _ = _certificates(pod.read("secrets-store-inline", "certs"))
    assert "test.example.com" in certificate.subject.rfc4514_string()
    pod.delete()


def test_8_wrong_service_account_does_not_have_access_to_vault(bats: Bats) -> None:
    """bats 8: the pod event names the pod and Vault's reason."""
    bats.api.apply(
        pod_manifest(NS, "nginx-kv-wrong-sa", "nginx-pki", {"secrets-store-inline": "vault-kv"}, NODE)
    )
    message = failed_mount_events(
        bats.kubelet, NS, "nginx-kv-wrong-sa", "service account name not authorized"
    )
    assert f"failed to mount secrets store objects for pod {NS}/nginx-kv-wrong-sa" in message
    assert "code = PermissionDenied" in message
    assert (
        'with role "kv-role" on auth mount "kubernetes" as service account test/nginx-pki was denied'
        in message
    )
    bats.api.delete(f"/api/v1/namespaces/{NS}/pods/nginx-kv-wrong-sa")
    bats.kubelet.wait_gone(NS, "nginx-kv-wrong-sa")


def test_9_vault_namespace(bats: Bats) -> None:
    """bats 9 (Vault Enterprise there; OpenBao namespaces here): a role and secret inside a namespace."""
    root = bats.vault.root
    setup.create_namespace(root, "acceptance")
    inside = setup.namespace_client(root, "acceptance")
    bats.vault.enable_kubernetes_auth(inside)
    setup.enable_kv(inside, "secret")
    setup.put_kv(inside, "secret", "kv1-namespace", {"greeting": "hello-namespaces"})
    setup.write_policy(
        inside, "kv-namespace-policy", 'path "secret/data/kv1-namespace" { capabilities = ["read"] }'
    )
    create_service_account(bats.api, NS, "nginx-kv-namespace")
    setup.kubernetes_role(
        inside,
        "kubernetes",
        "kv-namespace-role",
        ["nginx-kv-namespace"],
        [NS],
        ["kv-namespace-policy"],
        ttl="20m",
    )
    secret_provider_class(
        bats.api,
        NS,
        "vault-kv-namespace",
        {"roleName": "kv-namespace-role", "vaultNamespace": "acceptance",
         "objects": objects_yaml('- objectName: "secret-1"\n  secretPath: "secret/data/kv1-namespace"\n'
                                 '  secretKey: "greeting"\n')},
    )  # fmt: skip
    pod = bats.run("nginx-kv-namespace", "nginx-kv-namespace", {"secrets-store-inline": "vault-kv-namespace"})
    assert pod.read("secrets-store-inline", "secret-1") == b"hello-namespaces"
    pod.delete()


def test_10_custom_audience(bats: Bats) -> None:
    """bats 10: the CSIDriver's second audience; the role accepts only tokens for it."""
    pod = bats.run(
        "nginx-kv-custom-audience",
        "nginx-kv-custom-audience",
        {"secrets-store-inline": "vault-kv-custom-audience"},
    )
    assert pod.read("secrets-store-inline", "secret") == b"hello-custom-audience"
    pod.delete()


def test_11_consistent_version_hashes(bats: Bats, provider: ProviderUnderTest) -> None:
    """bats 11: the provider created its HMAC key Secret; versions survive a new pod and a provider
    restart, and change once the Secret is deleted and the provider has started again."""
    api = bats.api
    key_secret = "/api/v1/namespaces/vault-csi-provider/secrets/vault-csi-provider-hmac-key"
    assert api.exists(key_secret)

    def mount_once() -> tuple[str, dict[str, str]]:
        pod = bats.run("nginx-kv-versions", "nginx-kv", {"secrets-store-inline": "vault-kv"})
        status = pod.status("vault-kv")
        pod.delete()
        return status["metadata"]["uid"], status_versions(status)

    uid1, versions1 = mount_once()
    provider.restart()
    uid2, versions2 = mount_once()
    assert uid1 != uid2
    assert versions1 == versions2
    assert len(versions1) == 2

    # Unlike upstream, which reads its key Secret on every Mount, ours reads it at start.
    api.delete(key_secret)
    provider.restart()
    assert api.exists(key_secret)
    uid3, versions3 = mount_once()
    assert uid3 not in (uid1, uid2)
    assert versions3.keys() == versions2.keys()
    assert all(versions3[name] != versions2[name] for name in versions2)


def test_12_jwt_auth(bats: Bats) -> None:
    """bats 12: the JWT auth method, its issuer and keys from the API server's OIDC discovery."""
    pod = bats.run("nginx-kv-jwt-auth", "nginx-kv", {"secrets-store-inline": "vault-kv-jwt-auth"})
    assert pod.read("secrets-store-inline", "secret-1") == b"hello1"
    pod.delete()
