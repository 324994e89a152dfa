"""The session provider's debug log holds no token, secret value, secretArgs value or content.

This file's name sorts after the Mount suites', so its check covers every token they sent and
every file they were returned (pytest runs files in name order), plus its own Mounts.

Every test calls the provider over its unix socket the way the Secrets Store CSI driver
does (attributes built by `provider.tools.driver`, the driver's response checks and atomic
writer), logging in with a freshly minted service-account token; helpers are in `mounts`.
"""

from __future__ import annotations

import pytest
from harness import ProviderProcess, VaultEnv, unique
from mounts import mount, mount_error, spc

pytestmark = pytest.mark.integration


def test_log_never_shows_tokens_or_secrets(provider: ProviderProcess, vault: VaultEnv) -> None:
    """The debug log has a line per Mount but no token, secret value, secretArgs value or content.

    It checks every token the session provider was sent and every file it returned so far,
    plus its own Mounts that succeed and fail with the values at hand.
    """
    path = unique("app/planted")
    planted_value = unique("planted-secret-value")
    planted_bad_base64 = unique("planted*undecodable")
    planted_name = unique("planted-cn")
    vault.put_kv2(path, {"value": planted_value, "blob": planted_bad_base64})
    mount(
        provider,
        spc(f"""
            - objectName: value
              secretPath: secret/data/{path}
              secretKey: value
            - objectName: cert.key
              secretPath: pki/issue/web
              method: PUT
              secretArgs:
                common_name: {planted_name}.example.test
              secretKey: private_key
        """),
    )
    mount_error(
        provider,
        spc(f"- objectName: blob\n  secretPath: secret/data/{path}\n  secretKey: blob\n  encoding: base64\n"),
    )
    mount_error(
        provider, spc(f"- objectName: value\n  secretPath: secret/data/{path}\n"), service_account="web"
    )
    mount_error(
        provider,
        spc(
            "- objectName: cert\n  secretPath: pki/issue/web\n  method: PUT\n  secretKey: certificate\n"
            f"  secretArgs:\n    common_name: {planted_name}.not-allowed.test\n"
        ),
    )

    log = provider.log_path.read_bytes()
    assert b"mount pod=team-a/app-0 spc=app-secrets objects=2" in log
    leaked = [token for token in provider.tokens if token.encode() in log]
    assert leaked == [], "a service-account token reached the log"
    for value in (planted_value, planted_bad_base64, planted_name):
        assert value.encode() not in log, value
    # Long enough not to match ordinary words of a log line by chance.
    secrets_seen = [content for content in provider.contents if len(content) >= 12]
    assert secrets_seen
    assert [content for content in secrets_seen if content in log] == []
