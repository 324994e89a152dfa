"""Denials and missing secrets: Vault's reason in the message, the code the driver sees.

Every test calls the provider over its unix socket the way the Secrets Store CSI driver
does (attributes built by `provider.tools.driver`, the driver's response checks and atomic
writer), logging in with a freshly minted service-account token; helpers are in `mounts`.
"""

from __future__ import annotations

import grpc
import pytest
from harness import ProviderProcess, VaultEnv, pod_uid, unique
from mounts import mount_error, spc

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("namespace", "service_account", "role", "audience", "extra", "expected"),
    [
        pytest.param(
            "team-a",
            "web",
            "app",
            "vault",
            {},
            [
                'role "app" on auth mount "kubernetes"',
                "service account team-a/web",
                "service account name not authorized",
            ],
            id="other-service-account",
        ),
        pytest.param(
            "team-b",
            "app",
            "app",
            "vault",
            {},
            ["service account team-b/app", "namespace not authorized"],
            id="other-namespace",
        ),
        pytest.param(
            "team-a",
            "app",
            "app",
            "other-aud",
            {"audience": "other-aud"},
            ['role "app"', "invalid audience (aud) claim"],
            id="wrong-audience",
        ),
        pytest.param(
            "team-b",
            "app",
            "jwt-team-a",
            "vault",
            {"vaultAuthMountPath": "jwt"},
            ['auth mount "jwt"', 'claim "/kubernetes.io/namespace" does not match'],
            id="jwt-bound-claim",
        ),
    ],
)
def test_login_denied_with_vaults_reason(
    provider: ProviderProcess,
    namespace: str,
    service_account: str,
    role: str,
    audience: str,
    extra: dict[str, str],
    expected: list[str],
) -> None:
    """A login Vault refuses is PERMISSION_DENIED with Vault's reason and who tried, never the token."""
    uid = pod_uid(namespace, "app-0")
    token = provider.issuer.mint(namespace, service_account, "app-0", uid, audiences=[audience])
    objects = """
        - objectName: value
          secretPath: secret/data/app/anything
          secretKey: value
    """
    error = mount_error(
        provider,
        spc(objects, role=role, **extra),
        namespace=namespace,
        service_account=service_account,
        audience=audience,
        token=token,
    )

    assert error.code == grpc.StatusCode.PERMISSION_DENIED, error.message
    assert "login to Vault at " in error.message
    for text in expected:
        assert text in error.message
    assert token not in error.message


def test_read_outside_the_policy_is_permission_denied(provider: ProviderProcess, vault: VaultEnv) -> None:
    """A read the role's policy does not allow is PERMISSION_DENIED naming the object and path."""
    path = unique("forbidden/secret")
    vault.put_kv2(path, {"value": "not-for-app"})
    error = mount_error(
        provider,
        spc(f"""
            - objectName: forbidden
              secretPath: secret/data/{path}
              secretKey: value
        """),
    )

    assert error.code == grpc.StatusCode.PERMISSION_DENIED, error.message
    assert f'objects[0] "forbidden": GET /v1/secret/data/{path} was denied (403)' in error.message
    assert "permission denied" in error.message


def test_missing_path_is_not_found(provider: ProviderProcess) -> None:
    """Nothing at the path is NOT_FOUND naming the object and the path."""
    path = unique("app/absent")
    error = mount_error(
        provider,
        spc(f"""
            - objectName: absent
              secretPath: secret/data/{path}
              secretKey: value
        """),
    )

    assert error.code == grpc.StatusCode.NOT_FOUND, error.message
    assert f'objects[0] "absent": nothing at /v1/secret/data/{path} (404)' in error.message


def test_missing_key_is_not_found(provider: ProviderProcess, vault: VaultEnv) -> None:
    """A secret without the requested key is NOT_FOUND naming the object and the key."""
    path = unique("app/keys")
    vault.put_kv2(path, {"present": "present-value"})
    error = mount_error(
        provider,
        spc(f"""
            - objectName: wanted
              secretPath: secret/data/{path}
              secretKey: absent
        """),
    )

    assert error.code == grpc.StatusCode.NOT_FOUND, error.message
    assert 'objects[0] "wanted"' in error.message
    assert 'key "absent" does not exist' in error.message
    assert "present-value" not in error.message
