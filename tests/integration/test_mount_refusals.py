"""Requests refused before any network call: INVALID_ARGUMENT, and nothing sent to Vault.

Every test calls the provider over its unix socket the way the Secrets Store CSI driver
does (attributes built by `provider.tools.driver`, the driver's response checks and atomic
writer), logging in with a freshly minted service-account token; helpers are in `mounts`.
"""

from __future__ import annotations

import grpc
import pytest
from harness import ProviderProcess
from mounts import mount_error, spc

from devkit import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dead_address() -> str:
    """An http address where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


_OBJECT = "- objectName: pw\n  secretPath: secret/data/app/x\n  secretKey: password\n"


@pytest.mark.parametrize(
    ("objects", "parameters", "expected"),
    [
        pytest.param(
            "- objectName: pw\n  secretPath: secret/data/app/x\n  secretkey: password\n",
            {},
            ["objects[0] \"pw\": unknown key 'secretkey' (did you mean 'secretKey'?"],
            id="unknown-object-key",
        ),
        pytest.param(
            _OBJECT + "  method: DELETE\n",
            {},
            ["objects[0] \"pw\": method 'DELETE' is not allowed"],
            id="delete-method",
        ),
        pytest.param(
            _OBJECT + "  filePermission: 01777\n",
            {},
            ["objects[0] \"pw\": filePermission '01777' is outside 0 to 0777"],
            id="file-permission-too-big",
        ),
        pytest.param(
            _OBJECT + "  encoding: rot13\n",
            {},
            ["objects[0] \"pw\": encoding 'rot13' is not one of utf-8, base64, hex"],
            id="unknown-encoding",
        ),
        pytest.param(
            "- objectName: ../escape\n  secretPath: secret/data/app/x\n",
            {},
            ["objects[0] \"../escape\": objectName must not contain a '..' element"],
            id="dot-dot-object-name",
        ),
        pytest.param(
            _OBJECT + _OBJECT,
            {},
            ['objectName "pw" is used by objects[0], objects[1]'],
            id="duplicate-object-name",
        ),
        pytest.param(
            "- objectName: pw\n  secretPath: https://vault.example/v1/secret/data/x\n",
            {},
            ['objects[0] "pw": secretPath must be a path inside Vault'],
            id="secret-path-is-a-url",
        ),
        pytest.param(
            "- objectName: pw\n  secretPath: secret/data/x\n  secretkey: a\n"
            "- objectName: other\n  method: LIST\n",
            {},
            [
                "objects[0] \"pw\": unknown key 'secretkey'",
                "objects[1] \"other\": method 'LIST' is not allowed",
            ],
            id="every-problem-at-once",
        ),
        pytest.param("", {}, ["objects is empty"], id="no-objects"),
        pytest.param(_OBJECT, {"roleName": None}, ["roleName is required"], id="no-role"),
        pytest.param(
            _OBJECT,
            {"vaultAuthMountPath": "jwt", "vaultKubernetesMountPath": "kubernetes"},
            ["set only one of vaultAuthMountPath and vaultKubernetesMountPath"],
            id="both-mount-aliases",
        ),
        pytest.param(
            _OBJECT,
            {"vaultSkipTLSVerify": "yes"},
            ["vaultSkipTLSVerify 'yes' is not a boolean"],
            id="skip-verify-not-boolean",
        ),
        pytest.param(
            _OBJECT,
            {"vaultTLSClientCertPath": "/etc/client.crt"},
            ["vaultTLSClientCertPath and vaultTLSClientKeyPath must be set together"],
            id="client-cert-without-key",
        ),
        pytest.param(
            _OBJECT,
            {"vaultAddress": "ftp://vault.example:8200"},
            [
                "Vault address ftp://vault.example:8200 (from vaultAddress in the SecretProviderClass)",
                "must start with https://, http:// or unix://",
            ],
            id="address-scheme",
        ),
    ],
)
def test_bad_request_is_invalid_argument_before_any_network_call(
    provider: ProviderProcess,
    dead_address: str,
    objects: str,
    parameters: dict[str, str | None],
    expected: list[str],
) -> None:
    """A wrong SPC is INVALID_ARGUMENT naming the object or field, even when Vault is unreachable."""
    request = spc(objects, vaultAddress=dead_address)
    for key, value in parameters.items():
        if value is None:
            request.pop(key)
        else:
            request[key] = value
    error = mount_error(provider, request)

    assert error.code == grpc.StatusCode.INVALID_ARGUMENT, error.message
    for text in expected:
        assert text in error.message


@pytest.mark.parametrize(
    ("token_audience", "expected"),
    [
        pytest.param(
            "vault", 'no service-account token for audience "custom-aud" (present: "vault")', id="other"
        ),
        pytest.param(None, "no service-account token in the request", id="no-token-requests"),
    ],
)
def test_no_token_for_the_audience(
    provider: ProviderProcess, dead_address: str, token_audience: str | None, expected: str
) -> None:
    """Without a driver token for the SPC's audience the Mount is INVALID_ARGUMENT naming tokenRequests."""
    parameters = spc(_OBJECT, role="custom-aud", audience="custom-aud", vaultAddress=dead_address)
    error = mount_error(provider, parameters, audience=token_audience)

    assert error.code == grpc.StatusCode.INVALID_ARGUMENT, error.message
    assert expected in error.message
    assert "tokenRequests" in error.message
