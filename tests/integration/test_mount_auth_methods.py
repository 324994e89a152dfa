"""Other ways in: the JWT auth method, a custom audience, a Vault namespace.

Every test calls the provider over its unix socket the way the Secrets Store CSI driver
does (attributes built by `provider.tools.driver`, the driver's response checks and atomic
writer), logging in with a freshly minted service-account token; helpers are in `mounts`.
"""

from __future__ import annotations

import grpc
import pytest
from harness import ProviderProcess, VaultEnv, unique
from mounts import contents, mount, mount_error, spc

from devkit import vault_setup as setup

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("role", "mount_parameter"),
    [
        pytest.param("jwt-app", {"vaultAuthMountPath": "jwt"}, id="bound-subject"),
        pytest.param("jwt-team-a", {"vaultAuthMountPath": "auth/jwt"}, id="bound-claims-auth-prefix"),
        pytest.param("jwt-app", {"vaultKubernetesMountPath": "jwt"}, id="kubernetes-mount-path-alias"),
    ],
)
def test_jwt_auth_mount(
    provider: ProviderProcess, vault: VaultEnv, role: str, mount_parameter: dict[str, str]
) -> None:
    """Login works at the jwt auth mount with the same {role, jwt} body."""
    path = unique("app/jwt")
    vault.put_kv2(path, {"value": "read-via-jwt"})
    result = mount(
        provider,
        spc(
            f"""
            - objectName: value
              secretPath: secret/data/{path}
              secretKey: value
            """,
            role=role,
            **mount_parameter,
        ),
    )

    assert contents(result) == {"value": b"read-via-jwt"}


def test_custom_audience(provider: ProviderProcess, vault: VaultEnv) -> None:
    """SPC `audience` picks the driver's token for that audience; a role expecting it accepts it."""
    path = unique("app/audience")
    vault.put_kv2(path, {"value": "custom-audience-value"})
    parameters = spc(
        f"""
        - objectName: value
          secretPath: secret/data/{path}
          secretKey: value
        """,
        role="custom-aud",
        audience="custom-aud",
    )
    result = mount(provider, parameters, audience="custom-aud")

    assert contents(result) == {"value": b"custom-audience-value"}


def test_vault_namespace(provider: ProviderProcess, vault: VaultEnv) -> None:
    """vaultNamespace logs in and reads inside that namespace; the root namespace has no such secret."""
    path = unique("app/tenant")
    setup.put_kv(vault.tenant, "secret", path, {"value": "tenant-only-value"})
    objects = f"""
        - objectName: value
          secretPath: secret/data/{path}
          secretKey: value
    """
    result = mount(provider, spc(objects, vaultNamespace="tenant"))
    outside = mount_error(provider, spc(objects))

    assert contents(result) == {"value": b"tenant-only-value"}
    assert outside.code == grpc.StatusCode.NOT_FOUND, outside.message
    assert f'objects[0] "value": nothing at /v1/secret/data/{path} (404)' in outside.message
