"""openbao-csi-provider's vocabulary: `openbao*`/`bao*` parameters, `BAO_*` variables, `-also-serve-as`.

Parameter and variable names are openbao-csi-provider v2's (its internal/config and
main.go). Also: parameters no one reads are listed for a warning, never refused, and
the driver's own keys are not among them (the golden request in tests/testdata).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from test_spc import MINIMAL, TESTDATA, error_of, parse

from provider.request.mount_request import VaultOverrides, parse_mount_request
from provider.request.parameter_names import ALIASES, suggestion, unknown_parameters
from provider.serve.parameter_warnings import UnknownParameterWarnings
from provider.settings import FlagError, parse_settings

SUFFIXES = {
    "Address": ("address", "https://bao.example:8200"),
    "Namespace": ("namespace", "team-a"),
    "CACertPath": ("ca_cert", "/tls/ca.pem"),
    "CADirectory": ("ca_directory", "/tls/cas"),
    "TLSServerName": ("server_name", "bao.example"),
    "TLSClientCertPath": ("client_cert", "/tls/c.pem"),
    "TLSClientKeyPath": ("client_key", "/tls/k.pem"),
}


@pytest.mark.parametrize("prefix", ["openbao", "bao"])
def test_openbao_parameters_mean_the_vault_ones(prefix: str) -> None:
    """Every connection parameter of openbao-csi-provider v2, under both its prefixes, is read."""
    changes = {f"{prefix}{suffix}": value for suffix, (_, value) in SUFFIXES.items()}
    config = parse(**changes, **{f"{prefix}SkipTLSVerify": "true", f"{prefix}AuthMountPath": "jwt"})
    expected = {field: value for field, value in SUFFIXES.values()}
    assert config.vault_overrides == VaultOverrides(**expected, skip_verify=True)
    assert config.auth_mount == "jwt"
    assert config.unknown_parameters == ()


@pytest.mark.parametrize("key", ["openbaoRoleName", "baoRoleName", "vaultRoleName"])
def test_role_name_spellings(key: str) -> None:
    """openbao-csi-provider also reads the role as <prefix>RoleName."""
    assert parse(remove=("roleName",), **{key: "bao-role"}).role == "bao-role"


def test_kubernetes_mount_path_alias() -> None:
    assert parse(openbaoKubernetesMountPath="k8s-prod").auth_mount == "k8s-prod"


def test_same_value_under_two_spellings_is_fine() -> None:
    config = parse(vaultAddress="https://a:8200", openbaoAddress="https://a:8200")
    assert config.vault_overrides.address == "https://a:8200"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            {"vaultAddress": "https://a:8200", "openbaoAddress": "https://b:8200"},
            "openbaoAddress and vaultAddress are spellings of one setting with different values; "
            "keep only one",
            id="vault-and-openbao-address",
        ),
        pytest.param(
            {"baoNamespace": "x", "openbaoNamespace": "y"},
            "baoNamespace and openbaoNamespace are spellings of one setting with different values; "
            "keep only one",
            id="bao-and-openbao-namespace",
        ),
        pytest.param(
            {"openbaoRoleName": "other"},
            "openbaoRoleName and roleName are spellings of one setting with different values; keep only one",
            id="role-name",
        ),
        pytest.param(
            {"openbaoAuthMountPath": "jwt", "openbaoKubernetesMountPath": "kubernetes"},
            "set only one of vaultAuthMountPath and vaultKubernetesMountPath (they are aliases)",
            id="auth-and-kubernetes-mount-path",
        ),
    ],
)
def test_conflicting_spellings_are_refused(changes: dict[str, str], message: str) -> None:
    assert error_of(**changes) == message


def test_unknown_parameters_are_listed_not_refused() -> None:
    config = parse(vaultAdress="https://typo:8200", Objects="x")
    assert config.unknown_parameters == ("Objects", "vaultAdress")
    assert config.vault_overrides.address == ""


def test_driver_keys_are_known() -> None:
    """The kubelet's and driver's keys of a real request (and providerName) are not unknown."""
    attributes = (TESTDATA / "driver-attributes.json").read_text(encoding="utf-8")
    config = parse_mount_request(attributes, "null", "/t", "420")
    assert config.unknown_parameters == ()
    extra = {**MINIMAL, "providerName": "vault", "csi.storage.k8s.io/ephemeral": "true"}
    assert unknown_parameters(extra) == ()


@pytest.mark.parametrize(
    ("key", "close"),
    [
        ("vaultAdress", "vaultAddress"),
        ("vaultadress", "vaultAddress"),
        ("rolename", "roleName"),
        ("openbaoAdress", "openbaoAddress"),
        ("refreshIntervall", "refreshInterval"),
        ("somethingElse", None),
    ],
)
def test_suggestion(key: str, close: str | None) -> None:
    assert suggestion(key) == close


def test_every_alias_names_a_known_parameter() -> None:
    from provider.request.parameter_names import KNOWN_PARAMETERS

    assert set(ALIASES.values()) <= KNOWN_PARAMETERS
    assert len(ALIASES) == 2 * 10 + 3


def test_unknown_parameters_logged_once_per_spc(caplog: pytest.LogCaptureFixture) -> None:
    """One warning per SPC and key set, with a suggestion, never a value; memory stays bounded."""
    warnings = UnknownParameterWarnings(capacity=2)
    with caplog.at_level(logging.WARNING, logger="provider.mount"):
        for _ in range(3):
            warnings.check("team-a", "app", ("vaultAdress",))
        warnings.check("team-a", "app", ())
    assert [record.getMessage() for record in caplog.records] == [
        "SecretProviderClass team-a/app has parameters this provider does not read: "
        "vaultAdress (did you mean vaultAddress?) (ignored; check for typos)"
    ]
    for name in ("b", "c", "d"):
        warnings.check("team-a", name, ("x",))
    assert len(warnings) == 2
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="provider.mount"):
        warnings.check("team-a", "app", ("vaultAdress",))
    assert len(caplog.records) == 1, "forgotten past capacity, so said once more"


def test_unprintable_key_is_quoted_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="provider.mount"):
        UnknownParameterWarnings().check("ns", "s", ("bad\nkey",))
    assert "'bad\\nkey'" in caplog.records[0].getMessage()
    assert "\n" not in caplog.records[0].getMessage()


# --- BAO_* environment and -also-serve-as ----------------------------------------------------

ENV = [
    ("BAO_ADDR", "https://bao:8200", "vault_addr", "https://bao:8200"),
    ("BAO_NAMESPACE", "team", "vault_namespace", "team"),
    ("BAO_CACERT", "/ca.pem", "tls.ca_cert", "/ca.pem"),
    ("BAO_CAPATH", "/cas", "tls.ca_directory", "/cas"),
    ("BAO_TLS_SERVER_NAME", "bao", "tls.server_name", "bao"),
    ("BAO_SKIP_VERIFY", "true", "tls.skip_verify", True),
]


def attribute(settings: object, dotted: str) -> object:
    for part in dotted.split("."):
        settings = getattr(settings, part)
    return settings


@pytest.mark.parametrize(("variable", "text", "dotted", "value"), ENV, ids=[e[0] for e in ENV])
def test_bao_environment(variable: str, text: str, dotted: str, value: object) -> None:
    assert attribute(parse_settings([], {variable: text}), dotted) == value


def test_bao_client_cert_and_key() -> None:
    settings = parse_settings([], {"BAO_CLIENT_CERT": "/c", "BAO_CLIENT_KEY": "/k"})
    assert (settings.tls.client_cert, settings.tls.client_key) == ("/c", "/k")


def test_vault_variable_wins_over_bao_and_flag_over_both() -> None:
    environ = {"VAULT_ADDR": "https://vault:8200", "BAO_ADDR": "https://bao:8200"}
    assert parse_settings([], environ).vault_addr == "https://vault:8200"
    assert parse_settings([], environ).vault_addr_source == "env"
    flagged = parse_settings(["-vault-addr=https://flag:8200"], environ)
    assert (flagged.vault_addr, flagged.vault_addr_source) == ("https://flag:8200", "flag")
    # An empty VAULT_* is unset, so the BAO_* one counts.
    assert parse_settings([], {"VAULT_ADDR": "", "BAO_ADDR": "https://bao:8200"}).vault_addr == (
        "https://bao:8200"
    )


def test_bad_bao_value_names_the_variable() -> None:
    with pytest.raises(FlagError) as caught:
        parse_settings([], {"BAO_SKIP_VERIFY": "yes"})
    assert str(caught.value) == "invalid boolean value 'yes' for environment variable BAO_SKIP_VERIFY"


def test_also_serve_as() -> None:
    settings = parse_settings(["-endpoint=/provider/vault.sock", "-also-serve-as=openbao"], {})
    assert settings.endpoints == ("/provider/vault.sock", "/provider/openbao.sock")
    assert parse_settings([], {}).endpoints == ("/provider/vault.sock",)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["-also-serve-as=../x"],
            "invalid -also-serve-as name '../x': a provider name such as openbao",
            id="path",
        ),
        pytest.param(
            ["-also-serve-as=open bao"],
            "invalid -also-serve-as name 'open bao': a provider name such as openbao",
            id="space",
        ),
        pytest.param(
            ["-also-serve-as=vault"], "-also-serve-as names a socket twice (or -endpoint's own)", id="self"
        ),
        pytest.param(
            ["-also-serve-as=openbao,openbao"],
            "-also-serve-as names a socket twice (or -endpoint's own)",
            id="twice",
        ),
    ],
)
def test_bad_also_serve_as(argv: list[str], message: str) -> None:
    with pytest.raises(FlagError) as caught:
        parse_settings(argv, {})
    assert str(caught.value) == message


def test_golden_openbao_request(tmp_path: Path) -> None:
    """An attributes string with openbao-csi-provider's parameters, as the driver would send it."""
    attributes = json.loads((TESTDATA / "driver-attributes.json").read_text(encoding="utf-8"))
    attributes["openbaoAddress"] = attributes.pop("vaultAddress")
    attributes["openbaoAuthMountPath"] = attributes.pop("vaultAuthMountPath")
    config = parse_mount_request(json.dumps(attributes), "null", "/t", "420")
    assert config.vault_overrides.address == "https://vault.vault.svc:8200"
    assert config.auth_mount == "kubernetes"


def test_every_parameter_read_is_known() -> None:
    """A parameter some module of provider/request reads is never warned about as unknown."""
    import re

    from provider.request.parameter_names import KNOWN_PARAMETERS

    root = Path(__file__).resolve().parents[2] / "provider" / "request"
    read = {
        key
        for path in root.glob("*.py")
        for key in re.findall(r'params\.get\("([A-Za-z]+)"', path.read_text(encoding="utf-8"))
    }
    assert {"roleName", "vaultAddress", "credentialScope"} <= read
    assert read <= KNOWN_PARAMETERS
