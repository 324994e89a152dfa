"""Guard rails in provider.mount.target_policy: what a SecretProviderClass may point the provider at.

-allowed-vault-addresses, -allowed-tls-directories (symlinks resolved) and
-forbid-spc-skip-tls-verify limit only what the SPC says; the operator's own flags are
never refused. Every refusal is an InvalidRequest naming the SPC parameter and the flag.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from provider.errors import InvalidRequest
from provider.mount.target_policy import KnownTargets, resolve_target
from provider.request.mount_request import VaultOverrides
from provider.settings import parse_settings
from provider.vault.target import VaultTarget

VAULT = "https://vault.example:8200"
BACKUP = "https://backup.example:8200"
ALLOW_BOTH = f"-allowed-vault-addresses={VAULT}, {BACKUP}/"
PLANTED_PASSWORD = "planted-Pa55w0rd-4f1c9"


def resolve(flags: list[str], **spc: Any) -> VaultTarget:
    return resolve_target(parse_settings(flags, {}), VaultOverrides(**spc))


def refusal(flags: list[str], **spc: Any) -> str:
    with pytest.raises(InvalidRequest) as caught:
        resolve(flags, **spc)
    return str(caught.value)


# --- Vault addresses ---------------------------------------------------------------------


def test_guard_rails_are_off_by_default(tmp_path: Path) -> None:
    """Without the flags any SPC address, TLS file and skip-verify is accepted (upstream's behaviour)."""
    connection = resolve(
        [],
        address="https://anywhere.example:8200",
        ca_cert=str(tmp_path / "ca.pem"),
        client_cert="/etc/passwd",
        client_key="/etc/shadow",
        skip_verify=True,
    )
    assert connection.address == "https://anywhere.example:8200"
    assert connection.tls.skip_verify is True


@pytest.mark.parametrize(
    "address",
    [
        pytest.param(VAULT, id="first"),
        pytest.param(BACKUP, id="second-listed-with-trailing-slash"),
        pytest.param(VAULT + "/", id="spc-with-trailing-slash"),
    ],
)
def test_allowlisted_spc_address_is_accepted(address: str) -> None:
    """An SPC vaultAddress on the list is used; a trailing '/' on either side does not matter."""
    connection = resolve([ALLOW_BOTH], address=address)
    assert connection.address == address.rstrip("/")
    assert connection.address_source == "spc"


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        pytest.param("https://evil.example:8200", "https://evil.example:8200", id="other-host"),
        pytest.param("http://vault.example:8200", "http://vault.example:8200", id="other-scheme"),
        pytest.param("https://vault.example:8201", "https://vault.example:8201", id="other-port"),
        pytest.param("https://vault.example:8200/x", "https://vault.example:8200/x", id="other-prefix"),
        pytest.param("unix:///tmp/agent.sock", "unix:///tmp/agent.sock", id="unix-socket"),
    ],
)
def test_non_allowlisted_spc_address_is_refused(address: str, shown: str) -> None:
    """An SPC vaultAddress off the list is INVALID_ARGUMENT naming vaultAddress, the address and the flag."""
    message = refusal([ALLOW_BOTH], address=address)
    assert message == (
        f"vaultAddress {shown} is not one of the Vault addresses this provider allows "
        f"(-allowed-vault-addresses: {VAULT}, {BACKUP})"
    )


def test_refused_address_never_shows_its_credentials() -> None:
    """user:password in a refused vaultAddress is redacted in the message."""
    message = refusal([ALLOW_BOTH], address=f"https://user:{PLANTED_PASSWORD}@evil.example:8200")
    assert PLANTED_PASSWORD not in message
    assert message.startswith("vaultAddress https://[redacted]@evil.example:8200 (from vaultAddress in the")
    assert "carries a user name or password" in message


@pytest.mark.parametrize(
    "source_flags",
    [
        pytest.param(["-vault-addr=https://operator.example:8200"], id="flag"),
        pytest.param([], id="default"),
    ],
)
def test_operator_address_is_used_without_being_listed(source_flags: list[str]) -> None:
    """An SPC without vaultAddress gets the operator's address even when the allowlist does not name it."""
    connection = resolve([*source_flags, ALLOW_BOTH])
    assert connection.address_source in ("flag", "default")
    assert connection.address in ("https://operator.example:8200", "https://127.0.0.1:8200")


def test_spc_naming_the_operator_address_is_accepted() -> None:
    """An SPC that names the -vault-addr address itself is allowed: the operator chose that Vault."""
    operator = "https://operator.example:8200"
    connection = resolve([f"-vault-addr={operator}", ALLOW_BOTH], address=operator)
    assert connection.address == operator


# --- TLS files ---------------------------------------------------------------------------

TLS_PARAMETERS = [
    pytest.param("ca_cert", "vaultCACertPath", id="ca-cert"),
    pytest.param("ca_directory", "vaultCADirectory", id="ca-directory"),
    pytest.param("client_cert", "vaultTLSClientCertPath", id="client-cert"),
    pytest.param("client_key", "vaultTLSClientKeyPath", id="client-key"),
]


@pytest.fixture
def tls_dir(tmp_path: Path) -> Path:
    """An allowed directory holding ca.pem, next to an outside directory holding secret.pem."""
    allowed = tmp_path / "tls"
    allowed.mkdir()
    (allowed / "ca.pem").write_text("inside\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.pem").write_text("outside\n")
    return allowed


def _tls_spc(field: str, path: str) -> dict[str, Any]:
    """SPC overrides setting one TLS file (a client certificate always comes with its key)."""
    spc: dict[str, Any] = {field: path}
    if field == "client_cert":
        spc["client_key"] = path
    elif field == "client_key":
        spc["client_cert"] = path
    return spc


@pytest.mark.parametrize(("field", "parameter"), TLS_PARAMETERS)
def test_tls_path_inside_allowed_directory(tls_dir: Path, field: str, parameter: str) -> None:
    """A TLS file inside an allowed directory (or the directory itself) is accepted and used."""
    path = str(tls_dir if field == "ca_directory" else tls_dir / "ca.pem")
    connection = resolve([f"-allowed-tls-directories={tls_dir}"], **_tls_spc(field, path))
    assert getattr(connection.tls, field) == path


def test_tls_path_in_a_subdirectory_that_does_not_exist_yet(tls_dir: Path) -> None:
    """The check is about where a path points, not whether the file is there yet (it is read later)."""
    path = str(tls_dir / "sub" / "ca.pem")
    assert resolve([f"-allowed-tls-directories={tls_dir}"], ca_cert=path).tls.ca_cert == path


def _outside_paths(tls_dir: Path) -> dict[str, str]:
    outside = tls_dir.parent / "outside"
    escape = tls_dir / "escape.pem"
    escape.symlink_to(outside / "secret.pem")
    escape_dir = tls_dir / "escape-dir"
    escape_dir.symlink_to(outside)
    sibling = tls_dir.parent / "tls-evil"
    sibling.mkdir()
    return {
        "outside": str(outside / "secret.pem"),
        "dot-dot": f"{tls_dir}/../outside/secret.pem",
        "symlinked-file": str(escape),
        "through-symlinked-directory": f"{escape_dir}/secret.pem",
        "sibling-with-common-prefix": str(sibling / "ca.pem"),
        "relative": "outside/secret.pem",
        "root": "/",
    }


@pytest.mark.parametrize(
    "case",
    [
        "outside",
        "dot-dot",
        "symlinked-file",
        "through-symlinked-directory",
        "sibling-with-common-prefix",
        "relative",
        "root",
    ],
)
@pytest.mark.parametrize(("field", "parameter"), TLS_PARAMETERS)
def test_tls_path_escaping_the_allowed_directory(
    tls_dir: Path, field: str, parameter: str, case: str
) -> None:
    """Outside, '..', a symlink leading out, a look-alike sibling: refused, naming the parameter and flag."""
    path = _outside_paths(tls_dir)[case]
    message = refusal([f"-allowed-tls-directories={tls_dir}"], **_tls_spc(field, path))
    expected = (
        f"{parameter} {path} is outside the directories this provider allows for TLS files "
        f"(-allowed-tls-directories: {tls_dir})"
    )
    assert expected in message.split("; ")


def test_symlink_from_outside_into_the_allowed_directory_is_accepted(tls_dir: Path) -> None:
    """What counts is where a path finally leads: a link elsewhere that points inside is fine."""
    link = tls_dir.parent / "link-to-ca.pem"
    link.symlink_to(tls_dir / "ca.pem")
    assert resolve([f"-allowed-tls-directories={tls_dir}"], ca_cert=str(link)).tls.ca_cert == str(link)


def test_allowed_directory_given_through_a_symlink(tls_dir: Path) -> None:
    """An allowed directory named through a symlink is resolved too, so files in its target are inside."""
    alias = tls_dir.parent / "tls-alias"
    alias.symlink_to(tls_dir)
    connection = resolve([f"-allowed-tls-directories={alias}"], ca_cert=str(tls_dir / "ca.pem"))
    assert connection.tls.ca_cert == str(tls_dir / "ca.pem")


def test_any_of_several_allowed_directories(tls_dir: Path) -> None:
    """With two allowed directories a file in the second one is accepted."""
    second = tls_dir.parent / "outside"
    connection = resolve([f"-allowed-tls-directories={tls_dir},{second}"], ca_cert=str(second / "secret.pem"))
    assert connection.tls.ca_cert == str(second / "secret.pem")


def test_every_tls_problem_is_reported_at_once(tls_dir: Path) -> None:
    """Four TLS paths outside: one InvalidRequest listing all four parameters in order."""
    outside = str(tls_dir.parent / "outside" / "secret.pem")
    with pytest.raises(InvalidRequest) as caught:
        resolve(
            [f"-allowed-tls-directories={tls_dir}"],
            ca_cert=outside,
            ca_directory=outside,
            client_cert=outside,
            client_key=outside,
        )
    named = [problem.split(" ", 1)[0] for problem in caught.value.problems]
    assert named == ["vaultCACertPath", "vaultCADirectory", "vaultTLSClientCertPath", "vaultTLSClientKeyPath"]


def test_operator_tls_flags_are_not_limited(tls_dir: Path) -> None:
    """The operator's own -vault-tls-* files may live anywhere; only SPC paths are checked."""
    outside = str(tls_dir.parent / "outside" / "secret.pem")
    connection = resolve(
        [
            f"-allowed-tls-directories={tls_dir}",
            f"-vault-tls-ca-cert={outside}",
            f"-vault-tls-client-cert={outside}",
            f"-vault-tls-client-key={outside}",
        ]
    )
    assert connection.tls.ca_cert == connection.tls.client_cert == outside


def test_symlink_loop_inside_is_judged_by_where_it_stands(tls_dir: Path) -> None:
    """A symlink loop cannot be resolved; it stays where it is (inside), and no OSError leaks out."""
    loop = tls_dir / "loop.pem"
    os.symlink(loop, loop)
    assert resolve([f"-allowed-tls-directories={tls_dir}"], ca_cert=str(loop)).tls.ca_cert == str(loop)


# --- skip-verify -------------------------------------------------------------------------


def test_spc_skip_verify_forbidden() -> None:
    """vaultSkipTLSVerify: true from an SPC is refused when the operator forbids it, naming both."""
    message = refusal(["-forbid-spc-skip-tls-verify"], skip_verify=True)
    assert message == "vaultSkipTLSVerify is forbidden by the operator (-forbid-spc-skip-tls-verify)"


@pytest.mark.parametrize(
    ("flags", "spc_skip", "effective"),
    [
        pytest.param(["-forbid-spc-skip-tls-verify"], False, False, id="spc-says-false"),
        pytest.param(["-forbid-spc-skip-tls-verify"], None, False, id="spc-silent"),
        pytest.param(
            ["-forbid-spc-skip-tls-verify", "-vault-tls-skip-verify"], None, True, id="operator-flag-itself"
        ),
        pytest.param(
            ["-forbid-spc-skip-tls-verify", "-vault-tls-skip-verify"],
            False,
            False,
            id="spc-turns-verification-back-on",
        ),
        pytest.param([], True, True, id="not-forbidden"),
    ],
)
def test_skip_verify_allowed_cases(flags: list[str], spc_skip: bool | None, effective: bool) -> None:
    """Only an SPC turning verification off is refused; the operator's flag and an SPC's false are fine."""
    assert resolve(flags, skip_verify=spc_skip).tls.skip_verify is effective


def test_all_guard_rails_reported_together(tls_dir: Path) -> None:
    """An SPC breaking every rule gets one message naming each parameter with its flag."""
    outside = str(tls_dir.parent / "outside" / "secret.pem")
    message = refusal(
        [ALLOW_BOTH, f"-allowed-tls-directories={tls_dir}", "-forbid-spc-skip-tls-verify"],
        address="https://evil.example:8200",
        ca_cert=outside,
        skip_verify=True,
    )
    assert message == (
        "vaultAddress https://evil.example:8200 is not one of the Vault addresses this provider allows "
        f"(-allowed-vault-addresses: {VAULT}, {BACKUP}); "
        "vaultSkipTLSVerify is forbidden by the operator (-forbid-spc-skip-tls-verify); "
        f"vaultCACertPath {outside} is outside the directories this provider allows for TLS files "
        f"(-allowed-tls-directories: {tls_dir})"
    )


# --- KnownTargets: what each poll resolves again -----------------------------------------


def test_a_class_naming_no_tls_file_is_resolved_once() -> None:
    known = KnownTargets(parse_settings([ALLOW_BOTH], {}))
    spc = VaultOverrides(address=BACKUP)
    first = known.resolve(spc)
    assert known.resolve(VaultOverrides(address=BACKUP)) is first
    assert first.address == BACKUP


def test_a_refused_class_is_refused_on_every_poll() -> None:
    known = KnownTargets(parse_settings([f"-allowed-vault-addresses={VAULT}"], {}))
    for _ in range(2):
        with pytest.raises(InvalidRequest) as caught:
            known.resolve(VaultOverrides(address=BACKUP))
        assert str(caught.value).startswith(f"vaultAddress {BACKUP} is not one of the Vault addresses")


def test_a_class_naming_tls_files_is_checked_on_every_poll(tls_dir: Path) -> None:
    """A symlink re-pointed outside the allowed directory is refused on the next poll."""
    known = KnownTargets(parse_settings([f"-allowed-tls-directories={tls_dir}"], {}))
    link = tls_dir / "current-ca.pem"
    link.symlink_to(tls_dir / "ca.pem")
    assert known.resolve(VaultOverrides(ca_cert=str(link))).tls.ca_cert == str(link)
    outside = tls_dir.parent / "elsewhere.pem"
    outside.write_text("not a CA")
    link.unlink()
    link.symlink_to(outside)
    with pytest.raises(InvalidRequest) as caught:
        known.resolve(VaultOverrides(ca_cert=str(link)))
    assert "is outside the directories this provider allows for TLS files" in str(caught.value)
