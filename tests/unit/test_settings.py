"""provider.settings: process flags in Go's syntax over VAULT_* environment variables."""

from __future__ import annotations

from typing import Any

import pytest

from provider.settings import (
    DEFAULT_VAULT_ADDRESS,
    FlagError,
    Settings,
    TlsSettings,
    parse_bool,
    parse_settings,
    usage,
)


def settings(*argv: str, **environ: str) -> Settings:
    """parse_settings with an explicit environment, never the test process's own."""
    return parse_settings(list(argv), environ)


def flag_error(*argv: str, **environ: str) -> str:
    """The FlagError message for these flags and environment."""
    with pytest.raises(FlagError) as caught:
        settings(*argv, **environ)
    return str(caught.value)


def test_defaults_match_upstream() -> None:
    """No flags and no environment: upstream's defaults (the socket path is the charts' one)."""
    assert settings() == Settings(
        endpoint="/provider/vault.sock",
        log_level="info",
        log_format="text",
        show_version=False,
        health_addr=":8080",
        hmac_secret_name="vault-csi-provider-hmac-key",
        hmac_key_file="",
        cache_size=1000,
        vault_addr="https://127.0.0.1:8200",
        vault_addr_source="default",
        vault_mount="kubernetes",
        vault_namespace="",
        tls=TlsSettings(),
        shutdown_grace_seconds=20.0,
        max_concurrent_mounts=32,
    )
    assert DEFAULT_VAULT_ADDRESS == "https://127.0.0.1:8200"


def test_parse_settings_reads_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an explicit environment, os.environ is read."""
    monkeypatch.setenv("VAULT_NAMESPACE", "from-process")
    assert parse_settings([]).vault_namespace == "from-process"


@pytest.mark.parametrize(
    ("argv", "attribute", "value"),
    [
        pytest.param(["-endpoint=/p/v.sock"], "endpoint", "/p/v.sock", id="single-dash-equals"),
        pytest.param(["--endpoint=/p/v.sock"], "endpoint", "/p/v.sock", id="double-dash-equals"),
        pytest.param(["-endpoint", "/p/v.sock"], "endpoint", "/p/v.sock", id="single-dash-space"),
        pytest.param(["--endpoint", "/p/v.sock"], "endpoint", "/p/v.sock", id="double-dash-space"),
        pytest.param(["-health-addr=:9090"], "health_addr", ":9090", id="health-addr"),
        pytest.param(["-hmac-secret-name", "k"], "hmac_secret_name", "k", id="hmac-secret-name"),
        pytest.param(["-hmac-key-file=/k"], "hmac_key_file", "/k", id="hmac-key-file"),
        pytest.param(["-state-dir=/var/lib/p"], "state_dir", "/var/lib/p", id="state-dir"),
        pytest.param(["-vault-mount=jwt"], "vault_mount", "jwt", id="vault-mount"),
        pytest.param(["-vault-namespace=ns"], "vault_namespace", "ns", id="vault-namespace"),
        pytest.param(["-log-level=trace"], "log_level", "trace", id="log-level"),
        pytest.param(["-log-format", "json"], "log_format", "json", id="log-format"),
        pytest.param(["-cache-size=0"], "cache_size", 0, id="cache-size-zero"),
        pytest.param(["-cache-size", "-1"], "cache_size", -1, id="cache-size-negative-as-value"),
        pytest.param(["-max-concurrent-mounts=4"], "max_concurrent_mounts", 4, id="max-concurrent-mounts"),
        # Go's flag.Int parses with strconv.ParseInt(s, 0, 64): base prefixes and leading-zero octal.
        pytest.param(["-cache-size=0x10"], "cache_size", 16, id="int-flag-hex-as-go"),
        pytest.param(["-cache-size=010"], "cache_size", 8, id="int-flag-leading-zero-octal-as-go"),
        pytest.param(["-version"], "show_version", True, id="bool-alone"),
        pytest.param(["--version=true"], "show_version", True, id="bool-equals-true"),
        pytest.param(["-version=false"], "show_version", False, id="bool-equals-false"),
        pytest.param(["-version=T"], "show_version", True, id="bool-go-parse-bool-form"),
        pytest.param(["-endpoint=a=b"], "endpoint", "a=b", id="value-with-equals"),
        pytest.param([], "audience", "vault", id="audience-default"),
        pytest.param(["-audience=sts.example"], "audience", "sts.example", id="audience"),
        pytest.param(["-audience="], "audience", "vault", id="empty-audience-is-the-default"),
        pytest.param(["-endpoint=/a", "-endpoint=/b"], "endpoint", "/b", id="last-wins"),
        pytest.param(["-vault-addr", "-x"], "vault_addr", "-x", id="value-starting-with-dash"),
        pytest.param(
            ["-vault-addr=https://v:8200", "--"], "vault_addr", "https://v:8200", id="double-dash-ends"
        ),
    ],
)
def test_flag_syntax(argv: list[str], attribute: str, value: Any) -> None:
    """-flag, --flag, -flag=value and -flag value all work, as with Go's flag package."""
    assert getattr(settings(*argv), attribute) == value


@pytest.mark.parametrize(
    ("argv", "attribute", "value"),
    [
        pytest.param(["-vault-tls-ca-cert=/ca.pem"], "ca_cert", "/ca.pem", id="ca-cert"),
        pytest.param(["-vault-tls-ca-directory=/cas"], "ca_directory", "/cas", id="ca-directory"),
        pytest.param(["-vault-tls-server-name=vault"], "server_name", "vault", id="server-name"),
        pytest.param(["-vault-tls-skip-verify"], "skip_verify", True, id="skip-verify"),
        pytest.param(["-vault-tls-skip-verify=0"], "skip_verify", False, id="skip-verify-0"),
    ],
)
def test_tls_flags(argv: list[str], attribute: str, value: Any) -> None:
    """The vault-tls-* flags fill TlsSettings."""
    assert getattr(settings(*argv).tls, attribute) == value


def test_client_cert_and_key_flags() -> None:
    """Client certificate and key flags go together."""
    tls = settings("-vault-tls-client-cert=/c.pem", "-vault-tls-client-key=/c.key").tls
    assert (tls.client_cert, tls.client_key) == ("/c.pem", "/c.key")


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        pytest.param(["-debug"], "debug", id="debug"),
        pytest.param(["--debug"], "debug", id="double-dash-debug"),
        pytest.param(["-debug=true"], "debug", id="debug-true"),
        pytest.param(["-debug=false"], "info", id="debug-false"),
        pytest.param(["-debug", "-log-level=warn"], "warn", id="explicit-log-level-wins"),
        pytest.param(["-log-level=error", "-debug"], "error", id="explicit-log-level-wins-any-order"),
    ],
)
def test_debug_is_an_alias_for_debug_level(argv: list[str], level: str) -> None:
    """The deprecated -debug means -log-level=debug unless a log level is given too."""
    assert settings(*argv).log_level == level


@pytest.mark.parametrize(
    ("environ", "attribute", "value"),
    [
        pytest.param({"VAULT_ADDR": "https://env:8200"}, "vault_addr", "https://env:8200", id="VAULT_ADDR"),
        pytest.param({"VAULT_NAMESPACE": "team"}, "vault_namespace", "team", id="VAULT_NAMESPACE"),
        pytest.param({"VAULT_CACERT": "/ca.pem"}, "tls.ca_cert", "/ca.pem", id="VAULT_CACERT"),
        pytest.param({"VAULT_CAPATH": "/cas"}, "tls.ca_directory", "/cas", id="VAULT_CAPATH"),
        pytest.param({"VAULT_TLS_SERVER_NAME": "v"}, "tls.server_name", "v", id="VAULT_TLS_SERVER_NAME"),
        pytest.param({"VAULT_SKIP_VERIFY": "true"}, "tls.skip_verify", True, id="VAULT_SKIP_VERIFY"),
        pytest.param({"VAULT_SKIP_VERIFY": "1"}, "tls.skip_verify", True, id="VAULT_SKIP_VERIFY-1"),
        pytest.param({"VAULT_SKIP_VERIFY": "false"}, "tls.skip_verify", False, id="VAULT_SKIP_VERIFY-false"),
        pytest.param(
            {"VAULT_SKIP_VERIFY": ""}, "tls.skip_verify", False, id="VAULT_SKIP_VERIFY-empty-ignored"
        ),
        pytest.param({"VAULT_ADDR": ""}, "vault_addr", DEFAULT_VAULT_ADDRESS, id="VAULT_ADDR-empty-ignored"),
        pytest.param(
            {"VAULT_TOKEN": "t", "VAULT_MOUNT": "x"}, "vault_mount", "kubernetes", id="others-ignored"
        ),
    ],
)
def test_environment(environ: dict[str, str], attribute: str, value: Any) -> None:
    """VAULT_* variables set the defaults the Go Vault client reads from the environment."""
    result: Any = settings(**environ)
    for part in attribute.split("."):
        result = getattr(result, part)
    assert result == value


def test_client_cert_and_key_from_environment() -> None:
    """VAULT_CLIENT_CERT and VAULT_CLIENT_KEY set the client certificate."""
    tls = settings(VAULT_CLIENT_CERT="/c.pem", VAULT_CLIENT_KEY="/c.key").tls
    assert (tls.client_cert, tls.client_key) == ("/c.pem", "/c.key")


@pytest.mark.parametrize(
    ("argv", "environ", "address", "source"),
    [
        pytest.param([], {}, DEFAULT_VAULT_ADDRESS, "default", id="default"),
        pytest.param([], {"VAULT_ADDR": "https://env:8200"}, "https://env:8200", "env", id="env"),
        pytest.param(["-vault-addr=https://flag:8200"], {}, "https://flag:8200", "flag", id="flag"),
        pytest.param(
            ["-vault-addr=https://flag:8200"],
            {"VAULT_ADDR": "https://env:8200"},
            "https://flag:8200",
            "flag",
            id="flag-over-env",
        ),
        pytest.param(
            ["-vault-addr="],
            {"VAULT_ADDR": "https://env:8200"},
            "https://env:8200",
            "env",
            id="empty-flag-is-unset",
        ),
        pytest.param(["-vault-addr="], {}, DEFAULT_VAULT_ADDRESS, "default", id="empty-flag-no-env"),
        pytest.param(
            ["-vault-addr", "unix:///var/run/vault/agent.sock"],
            {},
            "unix:///var/run/vault/agent.sock",
            "flag",
            id="agent-socket",
        ),
    ],
)
def test_vault_addr_precedence(argv: list[str], environ: dict[str, str], address: str, source: str) -> None:
    """Flag over VAULT_ADDR over the default, and vault_addr_source says which one won."""
    result = settings(*argv, **environ)
    assert (result.vault_addr, result.vault_addr_source) == (address, source)


@pytest.mark.parametrize(
    ("argv", "environ", "attribute", "value"),
    [
        pytest.param(
            ["-vault-namespace=flag"], {"VAULT_NAMESPACE": "env"}, "vault_namespace", "flag", id="namespace"
        ),
        pytest.param(["-vault-tls-ca-cert=/f"], {"VAULT_CACERT": "/e"}, "tls.ca_cert", "/f", id="ca-cert"),
        pytest.param(
            ["-vault-tls-ca-directory=/f"], {"VAULT_CAPATH": "/e"}, "tls.ca_directory", "/f", id="ca-dir"
        ),
        pytest.param(
            ["-vault-tls-server-name=f"],
            {"VAULT_TLS_SERVER_NAME": "e"},
            "tls.server_name",
            "f",
            id="server-name",
        ),
        pytest.param(
            ["-vault-tls-skip-verify=false"],
            {"VAULT_SKIP_VERIFY": "true"},
            "tls.skip_verify",
            False,
            id="skip-false",
        ),
        pytest.param(
            ["-vault-tls-skip-verify"],
            {"VAULT_SKIP_VERIFY": "false"},
            "tls.skip_verify",
            True,
            id="skip-true",
        ),
        pytest.param([], {"VAULT_SKIP_VERIFY": "true"}, "tls.skip_verify", True, id="env-kept-without-flag"),
    ],
)
def test_flags_override_environment(
    argv: list[str], environ: dict[str, str], attribute: str, value: Any
) -> None:
    """Every flag with an environment variable wins over it."""
    result: Any = settings(*argv, **environ)
    for part in attribute.split("."):
        result = getattr(result, part)
    assert result == value


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("20s", 20.0, id="seconds"),
        pytest.param("1m", 60.0, id="minutes"),
        pytest.param("1h", 3600.0, id="hours"),
        pytest.param("500ms", 0.5, id="milliseconds"),
        pytest.param("1.5s", 1.5, id="fraction"),
        pytest.param("0s", 0.0, id="zero"),
    ],
)
def test_shutdown_grace_duration(text: str, seconds: float) -> None:
    """-shutdown-grace takes a Go-style duration."""
    assert settings(f"-shutdown-grace={text}").shutdown_grace_seconds == seconds


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        pytest.param(["-nope"], {}, "flag provided but not defined: -nope", id="unknown-flag"),
        pytest.param(["--vault-adr=x"], {}, "flag provided but not defined: -vault-adr", id="typo"),
        pytest.param(["-Endpoint=/x"], {}, "flag provided but not defined: -Endpoint", id="case-sensitive"),
        pytest.param(["-endpoint"], {}, "flag needs an argument: -endpoint", id="missing-value"),
        pytest.param(["---endpoint=/x"], {}, "bad flag syntax: ---endpoint=/x", id="three-dashes"),
        pytest.param(["-=x"], {}, "bad flag syntax: -=x", id="no-name"),
        pytest.param(["-h"], {}, "help requested", id="h"),
        pytest.param(["--help"], {}, "help requested", id="help"),
        pytest.param(["serve"], {}, "unexpected argument 'serve'", id="positional"),
        pytest.param(["-"], {}, "unexpected argument '-'", id="lone-dash"),
        pytest.param(["--", "x"], {}, "unexpected argument 'x'", id="after-double-dash"),
        pytest.param(
            ["-debug", "false"], {}, "unexpected argument 'false'", id="bool-takes-no-separate-value"
        ),
        pytest.param(["-debug=maybe"], {}, "invalid boolean value 'maybe' for flag -debug", id="bad-bool"),
        pytest.param(
            ["-cache-size=lots"], {}, "invalid integer value 'lots' for flag -cache-size", id="bad-int"
        ),
        pytest.param(
            ["-cache-size=1.5"], {}, "invalid integer value '1.5' for flag -cache-size", id="float-int"
        ),
        pytest.param(
            ["-shutdown-grace=soon"],
            {},
            "invalid duration 'soon' for flag -shutdown-grace (use e.g. 20s or 1m)",
            id="bad-duration",
        ),
        pytest.param(
            ["-shutdown-grace=-1s"],
            {},
            "invalid duration '-1s' for flag -shutdown-grace (use e.g. 20s or 1m)",
            id="negative-duration",
        ),
        pytest.param(
            ["-shutdown-grace=5d"],
            {},
            "invalid duration '5d' for flag -shutdown-grace (use e.g. 20s or 1m)",
            id="unknown-unit",
        ),
        pytest.param(
            ["-log-level=verbose"],
            {},
            "invalid -log-level 'verbose'; use one of trace, debug, info, warn, error, off",
            id="bad-log-level",
        ),
        pytest.param(
            ["-log-level=INFO"],
            {},
            "invalid -log-level 'INFO'; use one of trace, debug, info, warn, error, off",
            id="log-level-case",
        ),
        pytest.param(
            ["-log-format=xml"], {}, "invalid -log-format 'xml'; use text or json", id="bad-log-format"
        ),
        pytest.param(["-endpoint="], {}, "-endpoint must not be empty", id="empty-endpoint"),
        pytest.param(
            ["-state-dir=var/lib/state"],
            {},
            "-state-dir must be an absolute directory",
            id="relative-state-dir",
        ),
        pytest.param(
            ["-max-concurrent-mounts=0"],
            {},
            "-max-concurrent-mounts must be at least 1",
            id="zero-concurrency",
        ),
        pytest.param(
            ["-vault-tls-client-cert=/c"],
            {},
            "-vault-tls-client-cert and -vault-tls-client-key must be given together",
            id="cert-without-key",
        ),
        pytest.param(
            [],
            {"VAULT_CLIENT_KEY": "/k"},
            "-vault-tls-client-cert and -vault-tls-client-key must be given together",
            id="env-key-without-cert",
        ),
        pytest.param(
            [],
            {"VAULT_SKIP_VERIFY": "yes"},
            "invalid boolean value 'yes' for environment variable VAULT_SKIP_VERIFY",
            id="bad-env-bool",
        ),
    ],
)
def test_bad_flags(argv: list[str], environ: dict[str, str], message: str) -> None:
    """Bad flags and environment values stop startup with Go's wording where Go has one."""
    assert flag_error(*argv, **environ) == message


@pytest.mark.parametrize(
    ("text", "value"),
    [
        *(pytest.param(text, True, id=f"true-{text}") for text in ("1", "t", "T", "TRUE", "true", "True")),
        *(
            pytest.param(text, False, id=f"false-{text}")
            for text in ("0", "f", "F", "FALSE", "false", "False")
        ),
        *(
            pytest.param(text, None, id=f"invalid-{text or 'empty'}")
            for text in ("", "yes", "no", "tRUE", "on", " true", "2", "T ")
        ),
    ],
)
def test_parse_bool(text: str, value: bool | None) -> None:
    """parse_bool accepts exactly Go's strconv.ParseBool forms, else None."""
    assert parse_bool(text) is value


def test_usage_lists_every_flag_with_its_environment_variable() -> None:
    """-h output names each flag once; string flags show a value, env-backed ones their variable."""
    text = usage()
    assert text.startswith("Usage: vault-csi-provider [flags]\n")
    assert "  -vault-addr value\n" in text
    assert "(env VAULT_ADDR or BAO_ADDR)" in text
    assert "  -debug\n" in text
    assert "(env VAULT_SKIP_VERIFY or BAO_SKIP_VERIFY)" in text
    for name in ("endpoint", "log-level", "health-addr", "hmac-secret-name", "cache-size", "vault-mount"):
        assert text.count(f"  -{name}") == 1
