"""provider.mount.target_policy: the effective Vault connection, SecretProviderClass > flags > environment."""

from __future__ import annotations

from typing import Any

import pytest

from provider.errors import InvalidRequest
from provider.mount.target_policy import resolve_target
from provider.request.mount_request import VaultOverrides
from provider.settings import parse_settings
from provider.vault.target import VaultTarget


def resolve(env: dict[str, str], flags: list[str], spc: dict[str, Any]) -> VaultTarget:
    """The connection for one Mount from an environment, a command line and SPC overrides."""
    return resolve_target(parse_settings(flags, env), VaultOverrides(**spc))


def test_defaults() -> None:
    """Nothing set anywhere: the default address, no namespace, system CAs, verification on."""
    connection = resolve({}, [], {})
    assert connection == VaultTarget(address="https://127.0.0.1:8200", address_source="default")
    assert connection.describe() == "https://127.0.0.1:8200 (from the default)"
    assert connection.describe_trust() == "the system CA certificates"


# One row per setting and layer combination: env < flags < SecretProviderClass.
# field, environment, flags, SPC overrides, expected value
PRECEDENCE = [
    pytest.param("address", {"VAULT_ADDR": "https://env"}, [], {}, "https://env", id="address-env"),
    pytest.param(
        "address",
        {"VAULT_ADDR": "https://env"},
        ["-vault-addr=https://flag"],
        {},
        "https://flag",
        id="address-flag-over-env",
    ),
    pytest.param(
        "address",
        {"VAULT_ADDR": "https://env"},
        ["-vault-addr=https://flag"],
        {"address": "https://spc"},
        "https://spc",
        id="address-spc-over-flag",
    ),
    pytest.param(
        "address",
        {"VAULT_ADDR": "https://env"},
        [],
        {"address": "https://spc"},
        "https://spc",
        id="address-spc-over-env",
    ),
    pytest.param("namespace", {"VAULT_NAMESPACE": "env"}, [], {}, "env", id="namespace-env"),
    pytest.param(
        "namespace",
        {"VAULT_NAMESPACE": "env"},
        ["-vault-namespace=flag"],
        {},
        "flag",
        id="namespace-flag-over-env",
    ),
    pytest.param(
        "namespace",
        {"VAULT_NAMESPACE": "env"},
        ["-vault-namespace=flag"],
        {"namespace": "spc"},
        "spc",
        id="namespace-spc-over-flag",
    ),
    pytest.param(
        "namespace", {}, ["-vault-namespace=/team/a/"], {}, "team/a", id="namespace-slashes-trimmed"
    ),
    pytest.param("ca_cert", {"VAULT_CACERT": "/env"}, [], {}, "/env", id="ca-cert-env"),
    pytest.param(
        "ca_cert",
        {"VAULT_CACERT": "/env"},
        ["-vault-tls-ca-cert=/flag"],
        {},
        "/flag",
        id="ca-cert-flag-over-env",
    ),
    pytest.param(
        "ca_cert",
        {"VAULT_CACERT": "/env"},
        ["-vault-tls-ca-cert=/flag"],
        {"ca_cert": "/spc"},
        "/spc",
        id="ca-cert-spc-over-flag",
    ),
    pytest.param("ca_directory", {"VAULT_CAPATH": "/env"}, [], {}, "/env", id="ca-directory-env"),
    pytest.param(
        "ca_directory",
        {"VAULT_CAPATH": "/env"},
        ["-vault-tls-ca-directory=/flag"],
        {},
        "/flag",
        id="ca-directory-flag-over-env",
    ),
    pytest.param(
        "ca_directory",
        {},
        ["-vault-tls-ca-directory=/flag"],
        {"ca_directory": "/spc"},
        "/spc",
        id="ca-directory-spc-over-flag",
    ),
    pytest.param("server_name", {"VAULT_TLS_SERVER_NAME": "env"}, [], {}, "env", id="server-name-env"),
    pytest.param(
        "server_name",
        {"VAULT_TLS_SERVER_NAME": "env"},
        ["-vault-tls-server-name=flag"],
        {},
        "flag",
        id="server-name-flag-over-env",
    ),
    pytest.param(
        "server_name",
        {},
        ["-vault-tls-server-name=flag"],
        {"server_name": "spc"},
        "spc",
        id="server-name-spc-over-flag",
    ),
    pytest.param("skip_verify", {"VAULT_SKIP_VERIFY": "true"}, [], {}, True, id="skip-verify-env"),
    pytest.param(
        "skip_verify",
        {"VAULT_SKIP_VERIFY": "true"},
        ["-vault-tls-skip-verify=false"],
        {},
        False,
        id="skip-verify-flag-false-over-env-true",
    ),
    pytest.param("skip_verify", {}, ["-vault-tls-skip-verify"], {}, True, id="skip-verify-flag"),
    # An SPC silent about skip-verify keeps the operator's setting (upstream reset it to false).
    pytest.param(
        "skip_verify",
        {},
        ["-vault-tls-skip-verify"],
        {"skip_verify": None},
        True,
        id="skip-verify-spc-silent-keeps-flag",
    ),
    pytest.param(
        "skip_verify",
        {"VAULT_SKIP_VERIFY": "true"},
        [],
        {"skip_verify": None},
        True,
        id="skip-verify-spc-silent-keeps-env",
    ),
    # An SPC that says false means false, even over a flag that says true.
    pytest.param(
        "skip_verify",
        {},
        ["-vault-tls-skip-verify"],
        {"skip_verify": False},
        False,
        id="skip-verify-spc-false-over-flag-true",
    ),
    pytest.param("skip_verify", {}, [], {"skip_verify": True}, True, id="skip-verify-spc-true"),
]


@pytest.mark.parametrize(("field", "env", "flags", "spc", "expected"), PRECEDENCE)
def test_precedence(
    field: str, env: dict[str, str], flags: list[str], spc: dict[str, Any], expected: Any
) -> None:
    """Each setting comes from the highest layer that sets it: SPC, then flag, then environment."""
    connection = resolve(env, flags, spc)
    assert getattr(connection if field in ("address", "namespace") else connection.tls, field) == expected


@pytest.mark.parametrize(
    ("env", "flags", "spc", "source", "described"),
    [
        pytest.param({}, [], {}, "default", "https://127.0.0.1:8200 (from the default)", id="default"),
        pytest.param(
            {"VAULT_ADDR": "https://env:8200"}, [], {}, "env", "https://env:8200 (from VAULT_ADDR)", id="env"
        ),
        pytest.param(
            {"VAULT_ADDR": "https://env:8200"},
            ["-vault-addr=https://flag:8200"],
            {},
            "flag",
            "https://flag:8200 (from the -vault-addr flag)",
            id="flag",
        ),
        pytest.param(
            {},
            ["-vault-addr=https://flag:8200"],
            {"address": "https://spc:8200"},
            "spc",
            "https://spc:8200 (from vaultAddress in the SecretProviderClass)",
            id="spc",
        ),
    ],
)
def test_address_source(
    env: dict[str, str], flags: list[str], spc: dict[str, Any], source: str, described: str
) -> None:
    """The connection remembers where its address came from, for error messages."""
    connection = resolve(env, flags, spc)
    assert connection.address_source == source
    assert connection.describe() == described


@pytest.mark.parametrize(
    ("env", "flags", "spc", "cert", "key"),
    [
        pytest.param(
            {"VAULT_CLIENT_CERT": "/env.pem", "VAULT_CLIENT_KEY": "/env.key"},
            [],
            {},
            "/env.pem",
            "/env.key",
            id="env",
        ),
        pytest.param(
            {"VAULT_CLIENT_CERT": "/env.pem", "VAULT_CLIENT_KEY": "/env.key"},
            ["-vault-tls-client-cert=/flag.pem", "-vault-tls-client-key=/flag.key"],
            {},
            "/flag.pem",
            "/flag.key",
            id="flag-over-env",
        ),
        pytest.param(
            {},
            ["-vault-tls-client-cert=/flag.pem", "-vault-tls-client-key=/flag.key"],
            {"client_cert": "/spc.pem", "client_key": "/spc.key"},
            "/spc.pem",
            "/spc.key",
            id="spc-over-flag",
        ),
        pytest.param(
            {},
            ["-vault-tls-client-cert=/flag.pem", "-vault-tls-client-key=/flag.key"],
            {"client_key": "/spc.key"},
            "/flag.pem",
            "/flag.key",
            id="spc-key-alone-does-not-pair-with-flag-cert",
        ),
        pytest.param(
            {},
            ["-vault-tls-client-cert=/flag.pem", "-vault-tls-client-key=/flag.key"],
            {"client_cert": "/spc.pem"},
            "/spc.pem",
            "",
            id="spc-cert-alone-does-not-pair-with-flag-key",
        ),
        pytest.param(
            {}, [], {"client_cert": "/spc.pem", "client_key": "/spc.key"}, "/spc.pem", "/spc.key", id="spc"
        ),
    ],
)
def test_client_cert_and_key_from_one_layer(
    env: dict[str, str], flags: list[str], spc: dict[str, Any], cert: str, key: str
) -> None:
    """A client certificate and its key always come from the same layer, never mixed."""
    connection = resolve(env, flags, spc)
    assert (connection.tls.client_cert, connection.tls.client_key) == (cert, key)


@pytest.mark.parametrize(
    ("address", "expected", "scheme"),
    [
        pytest.param("https://vault.example:8200", "https://vault.example:8200", "https", id="https"),
        pytest.param("http://127.0.0.1:8200", "http://127.0.0.1:8200", "http", id="http"),
        pytest.param(
            "https://vault.example:8200/", "https://vault.example:8200", "https", id="trailing-slash"
        ),
        pytest.param("https://vault.example/vault", "https://vault.example/vault", "https", id="path-prefix"),
        pytest.param("https://[::1]:8200", "https://[::1]:8200", "https", id="ipv6"),
        pytest.param("HTTPS://Vault.Example", "HTTPS://Vault.Example", "https", id="uppercase-scheme"),
        pytest.param(
            "unix:///var/run/vault/agent.sock", "unix:///var/run/vault/agent.sock", "unix", id="agent-socket"
        ),
    ],
)
def test_good_addresses(address: str, expected: str, scheme: str) -> None:
    """https, http and unix:///absolute addresses are accepted."""
    connection = resolve({}, [], {"address": address})
    assert (connection.address, connection.scheme) == (expected, scheme)


@pytest.mark.parametrize(
    ("env", "flags", "spc", "message"),
    [
        pytest.param(
            {},
            [],
            {"address": "vault:8200"},
            "Vault address vault:8200 (from vaultAddress in the SecretProviderClass) "
            "must start with https://, http:// or unix://",
            id="no-scheme",
        ),
        pytest.param(
            {},
            [],
            {"address": "127.0.0.1:8200"},
            "Vault address 127.0.0.1:8200 (from vaultAddress in the SecretProviderClass) "
            "must start with https://, http:// or unix://",
            id="ip-no-scheme",
        ),
        pytest.param(
            {},
            ["-vault-addr=ftp://x"],
            {},
            "Vault address ftp://x (from the -vault-addr flag) must start with https://, http:// or unix://",
            id="ftp-from-flag",
        ),
        pytest.param(
            {"VAULT_ADDR": "unix://relative"},
            [],
            {},
            "Vault address unix://relative (from VAULT_ADDR) must be unix:///absolute/path/to.sock",
            id="unix-relative-from-env",
        ),
        pytest.param(
            {},
            [],
            {"address": "unix:vault.sock"},
            "Vault address unix:vault.sock (from vaultAddress in the SecretProviderClass) "
            "must be unix:///absolute/path/to.sock",
            id="unix-opaque",
        ),
        pytest.param(
            {},
            [],
            {"address": "https://vault:port"},
            "Vault address https://vault:port (from vaultAddress in the SecretProviderClass) "
            "is not a valid URL",
            id="bad-port",
        ),
        pytest.param(
            {},
            [],
            {"address": "https://vault:99999"},
            "Vault address https://vault:99999 (from vaultAddress in the SecretProviderClass) "
            "is not a valid URL",
            id="port-out-of-range",
        ),
        pytest.param(
            {},
            [],
            {"address": "https://vault?x=1"},
            "Vault address https://vault?x=1 (from vaultAddress in the SecretProviderClass) "
            "must be scheme://host[:port][/prefix]",
            id="query",
        ),
        pytest.param(
            {},
            [],
            {"address": "http://vault#frag"},
            "Vault address http://vault#frag (from vaultAddress in the SecretProviderClass) "
            "must be scheme://host[:port][/prefix]",
            id="fragment",
        ),
        pytest.param(
            {},
            ["-vault-addr=https:///path"],
            {},
            "Vault address https:///path (from the -vault-addr flag) must be scheme://host[:port][/prefix]",
            id="no-host",
        ),
    ],
)
def test_bad_addresses(env: dict[str, str], flags: list[str], spc: dict[str, Any], message: str) -> None:
    """An unusable address is an InvalidRequest naming the address and where it came from."""
    with pytest.raises(InvalidRequest) as caught:
        resolve(env, flags, spc)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("spc", "trust"),
    [
        pytest.param({}, "the system CA certificates", id="system"),
        pytest.param({"ca_cert": "/ca.pem"}, "CA file /ca.pem", id="ca-file"),
        pytest.param({"ca_directory": "/cas"}, "CA directory /cas", id="ca-directory"),
        pytest.param(
            {"ca_cert": "/ca.pem", "ca_directory": "/cas"}, "CA file /ca.pem", id="file-before-directory"
        ),
        pytest.param(
            {"ca_cert": "/ca.pem", "skip_verify": True}, "certificate verification disabled", id="skip"
        ),
    ],
)
def test_describe_trust(spc: dict[str, Any], trust: str) -> None:
    """describe_trust names what verifies Vault's certificate, for TLS error messages."""
    assert resolve({}, [], spc).describe_trust() == trust


def test_connection_is_a_pool_key() -> None:
    """Equal settings give equal, hashable connections; any difference gives another."""
    first = resolve({}, [], {"address": "https://v:8200", "namespace": "a"})
    same = resolve({}, [], {"address": "https://v:8200/", "namespace": "a"})
    other = resolve({}, [], {"address": "https://v:8200", "namespace": "b"})
    assert first == same
    assert hash(first) == hash(same)
    assert first != other
