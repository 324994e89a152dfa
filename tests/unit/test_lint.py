"""provider.lint: SecretProviderClass files checked with the Mount path's own parsing, no Vault.

The bad-input table starts from GOOD_PARAMETERS and changes one parameter per
case; each case must be reported by the linter and rejected, in the same words,
by the Mount path (`parse_mount_request`, then `resolve_target`).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from provider.errors import InvalidRequest
from provider.mount.target_policy import resolve_target
from provider.request.mount_request import parse_mount_request
from provider.settings import parse_settings
from provider.tools.driver.attributes import PodInfo, build_mount_payload
from provider.tools.lint import main

OBJECT = "- objectName: a\n  secretPath: secret/data/a\n"
GOOD_PARAMETERS = {"roleName": "app", "objects": OBJECT}


def spc(name: str = "app", provider: str = "vault", **parameters: str | None) -> dict[str, Any]:
    """A SecretProviderClass document: GOOD_PARAMETERS with `parameters` replaced, or removed when None."""
    merged = {key: value for key, value in {**GOOD_PARAMETERS, **parameters}.items() if value is not None}
    return {
        "apiVersion": "secrets-store.csi.x-k8s.io/v1",
        "kind": "SecretProviderClass",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {"provider": provider, "parameters": merged},
    }


def write(tmp_path: Path, *documents: object, name: str = "spc.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(documents), encoding="utf-8")
    return str(path)


def lint(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    """Exit code and stdout lines of `vault-csi-provider lint ARGS`."""
    code = main(list(args))
    return code, capsys.readouterr().out.splitlines()


def mount_path_rejects(parameters: dict[str, str]) -> list[str]:
    """The problems a Mount reports for an SPC with `parameters`, built as the driver builds the request."""
    attributes, secrets = build_mount_payload(
        parameters,
        spc_name="app",
        pod=PodInfo(
            namespace="team-a",
            name="web-0",
            uid="5f0c3d9e-0000-4000-8000-000000000001",
            service_account="web",
        ),
        tokens={"vault": ("a-token", "2099-01-01T00:00:00Z")},
    )
    with pytest.raises(InvalidRequest) as caught:
        prepare_mount(attributes, secrets)
    return caught.value.problems


def prepare_mount(attributes: str, secrets: str) -> None:
    """What the servicer and Mount do with a request before the first call to Vault."""
    config = parse_mount_request(attributes, secrets, "/var/lib/kubelet/pods/x/volumes/v", "420")
    resolve_target(parse_settings([], environ={}), config.vault_overrides)


def test_good_spc_is_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A valid vault SPC exits 0 and says ok; --quiet says nothing."""
    path = write(tmp_path, spc())
    assert lint(capsys, path) == (0, [f"{path}: document 1 (SecretProviderClass/app): ok"])
    assert lint(capsys, "--quiet", path) == (0, [])


def test_address_list_is_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A vaultAddress listing several nodes is accepted as a whole."""
    path = write(tmp_path, spc(vaultAddress="https://v1:8200, https://v2:8200/,unix:///run/agent.sock"))
    assert lint(capsys, path) == (0, [f"{path}: document 1 (SecretProviderClass/app): ok"])


def test_multi_document_reports_every_problem_with_document_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One good and one bad class: every problem of the bad one at once, each with its document number."""
    bad_objects = (
        "- objectName: a\n  secretpath: secret/data/a\n"
        "- objectName: b\n  secretPath: secret/data/b\n  filePermission: '0999'\n"
        "- objectName: b\n  secretPath: secret/data/c\n"
    )
    service_account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web"}}
    path = write(tmp_path, service_account, spc("good"), spc("bad", roleName=None, objects=bad_objects))
    code, lines = lint(capsys, path)
    where = f"{path}: document 3 (SecretProviderClass/bad)"
    assert code == 1
    assert lines == [
        f"{path}: document 2 (SecretProviderClass/good): ok",
        f"{where}: roleName is required: the Vault role to log in with",
        f"{where}: objects[0] \"a\": unknown key 'secretpath' "
        "(did you mean 'secretPath'? keys are case-sensitive)",
        f'{where}: objects[0] "a": secretPath is required, e.g. secret/data/my-app',
        f"{where}: objects[1] \"b\": filePermission '0999' is not a number such as 0600, 0o600 or 384",
        f'{where}: objectName "b" is used by objects[1], objects[2]; each object needs its own file name',
    ]


def test_other_providers_and_kinds_are_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Non-vault classes and other kinds are not checked; only --verbose mentions them."""
    path = write(
        tmp_path,
        {"kind": "ConfigMap", "metadata": {"name": "c"}},
        spc("azure", provider="azure", roleName=None),
    )
    assert lint(capsys, path) == (0, [])
    assert lint(capsys, "--verbose", path) == (
        0,
        [
            f"{path}: document 1 (ConfigMap/c): skipped: not a SecretProviderClass",
            f"{path}: document 2 (SecretProviderClass/azure): "
            "skipped: provider is 'azure', not 'vault' or 'openbao'",
        ],
    )


@pytest.mark.parametrize(
    ("parameters", "problem"),
    [
        pytest.param({"roleName": None}, "roleName is required: the Vault role to log in with", id="no-role"),
        pytest.param(
            {"vaultSkipTLSVerify": "maybe"},
            "vaultSkipTLSVerify 'maybe' is not a boolean (use true or false)",
            id="skip-tls-not-boolean",
        ),
        pytest.param(
            {"credentialScope": "node"},
            "credentialScope 'node' must be pod (the default) or serviceAccount",
            id="bad-credential-scope",
        ),
        pytest.param(
            {"refreshInterval": "10"},
            "refreshInterval '10' must be a Go duration between 0s and 24h, such as 30s or 5m",
            id="bad-refresh-interval",
        ),
        pytest.param(
            {"vaultNamespace": "team a"},
            "vaultNamespace must be a Vault namespace path of printable ASCII, such as team-a/apps",
            id="bad-namespace",
        ),
        pytest.param(
            {"vaultTLSClientCertPath": "/tls/client.pem"},
            "vaultTLSClientCertPath and vaultTLSClientKeyPath must be set together",
            id="client-cert-without-key",
        ),
        pytest.param(
            {"vaultAuthMountPath": "k8s", "vaultKubernetesMountPath": "k8s"},
            "set only one of vaultAuthMountPath and vaultKubernetesMountPath (they are aliases)",
            id="auth-mount-aliases",
        ),
        pytest.param(
            {"vaultAuthMountPath": "a/../b"},
            "vaultAuthMountPath must be an auth mount name such as kubernetes or jwt",
            id="auth-mount-dotdot",
        ),
        pytest.param(
            {"vaultAddress": "ftp://vault"},
            "Vault address ftp://vault (from vaultAddress in the SecretProviderClass) "
            "must start with https://, http:// or unix://",
            id="address-scheme",
        ),
        pytest.param(
            {"vaultAddress": "https://vault:port"},
            "Vault address https://vault:port (from vaultAddress in the SecretProviderClass) "
            "is not a valid URL",
            id="address-port",
        ),
        pytest.param(
            {"vaultAddress": "https://v1:8200, ftp://v2:8200,https://v3:8200"},
            "Vault address ftp://v2:8200 (from vaultAddress in the SecretProviderClass) "
            "must start with https://, http:// or unix://",
            id="address-list-bad-element",
        ),
        pytest.param(
            {"vaultAddress": "https://v1:8200,,https://v3:8200"},
            "vaultAddress in the SecretProviderClass has an empty address (element 2 of 3)",
            id="address-list-empty-element",
        ),
        pytest.param(
            {"vaultAddress": "https://v1:8200,https://v1:8200/"},
            "vaultAddress in the SecretProviderClass lists https://v1:8200 more than once",
            id="address-list-duplicate",
        ),
        pytest.param(
            {"objects": ""},
            "objects is empty: list at least one object with objectName and secretPath",
            id="objects-empty",
        ),
        pytest.param(
            {"objects": "objectName: a\n"},
            "objects must be a YAML list of objects (each starting with '- objectName: ...')",
            id="objects-not-a-list",
        ),
        pytest.param(
            {"objects": "- [\n"},
            "objects is not valid YAML: expected the node content, "
            "but found '<stream end>' at line 2, column 1",
            id="objects-bad-yaml",
        ),
        pytest.param(
            {"objects": "- secretPath: secret/data/a\n"},
            "objects[0]: objectName is required (it is the file name in the volume)",
            id="no-object-name",
        ),
        pytest.param(
            {"objects": "- objectName: ../a\n  secretPath: secret/data/a\n"},
            "objects[0] \"../a\": objectName must not contain a '..' element",
            id="object-name-escapes",
        ),
        pytest.param(
            {"objects": OBJECT + "  method: DELETE\n"},
            "objects[0] \"a\": method 'DELETE' is not allowed; use GET to read, PUT or POST to issue",
            id="method",
        ),
        pytest.param(
            {"objects": OBJECT + "  encoding: rot13\n"},
            "objects[0] \"a\": encoding 'rot13' is not one of utf-8, base64, hex",
            id="encoding",
        ),
        pytest.param(
            {"objects": OBJECT + "  filePermission: 01000\n"},
            "objects[0] \"a\": filePermission '01000' is outside 0 to 0777",
            id="file-permission-too-big",
        ),
        pytest.param(
            {"objects": "- objectName: a\n  secretPath: secret/../sys\n"},
            "objects[0] \"a\": secretPath must not contain '.' or '..' elements",
            id="secret-path-dotdot",
        ),
        pytest.param(
            {"objects": "- objectName: a\n  secretPath: 'x?a=1;b=2'\n"},
            "objects[0] \"a\": secretPath query uses ';' as a separator; use '&'",
            id="secret-path-semicolon",
        ),
        pytest.param(
            {"objects": OBJECT + "  secretArgs: [1]\n"},
            'objects[0] "a": secretArgs must be a mapping of argument names to values',
            id="secret-args-list",
        ),
        pytest.param(
            {"objects": OBJECT + "  secretKey: [a]\n"},
            'objects[0] "a": secretKey must be a single value, not a list or mapping',
            id="secret-key-list",
        ),
        pytest.param(
            {"objects": OBJECT + "- objectName: a/b\n  secretPath: secret/data/b\n"},
            'objectName "a" is a file, so "a/b" cannot be a file inside it',
            id="file-under-file",
        ),
        pytest.param(
            {"objects": "- objectName: t\n  template: '{{ with secret \"secret/data/a\" }}{{ .x }'\n"},
            "objects[0] \"t\": template line 1, column 40: unexpected '}' in action",
            id="template-syntax",
        ),
        pytest.param(
            {"objects": "- objectName: t\n  template: '{{ with secret .path }}{{ end }}'\n"},
            'objects[0] "t": template line 1, column 9: secret\'s path and arguments must be quoted '
            "strings written in the template, so every read is known before the Mount talks to Vault",
            id="template-computed-path",
        ),
        pytest.param(
            {"objects": "- objectName: t\n  template: '{{ with secret \"a\" }}{{ end }}'\n  secretKey: k\n"},
            'objects[0] "t": a template names its own reads; remove secretKey',
            id="template-and-secret-key",
        ),
        pytest.param(
            {"objects": OBJECT + "  optional: perhaps\n"},
            "objects[0] \"a\": optional 'perhaps' is not a boolean (use true or false)",
            id="optional-not-boolean",
        ),
        pytest.param(
            {"objects": OBJECT + "  secretKeyPointer: config.db\n"},
            "objects[0] \"a\": secretKeyPointer 'config.db' must be a JSON Pointer such as "
            "/config/db/password",
            id="key-pointer-not-a-pointer",
        ),
    ],
)
def test_linter_catches_what_mount_rejects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], parameters: dict[str, str | None], problem: str
) -> None:
    """Each bad input is printed by the linter, and the Mount path rejects the same SPC with the same text."""
    document = spc(**parameters)
    path = write(tmp_path, document)
    assert lint(capsys, path) == (1, [f"{path}: document 1 (SecretProviderClass/app): {problem}"])
    assert mount_path_rejects(document["spec"]["parameters"]) == [problem]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param(
            "kind: SecretProviderClass\nmetadata: {name: app\n",
            "document 2: not valid YAML at line 14, column 1: expected ',' or '}', but got '<stream end>'",
            id="yaml-syntax",
        ),
        pytest.param(
            "apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nmetadata: {name: app}\n"
            "spec: {provider: vault, parameters: {roleName: app, vaultSkipTLSVerify: true}}\n",
            "document 2 (SecretProviderClass/app): spec.parameters.vaultSkipTLSVerify must be a string, "
            "got a boolean; quote it, or write a nested document as a block string (`key: |`)",
            id="parameter-not-a-string",
        ),
        pytest.param("[a]\n", "document 2: expected a mapping, got list", id="not-a-mapping"),
    ],
)
def test_manifest_problems_are_reported_per_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: str
) -> None:
    """What the driver's manifest reader refuses is a problem of that document, not a crash."""
    path = tmp_path / "spc.yaml"
    path.write_text(f"{yaml.safe_dump(spc())}---\n{text}", encoding="utf-8")
    code, lines = lint(capsys, str(path))
    assert code == 1
    assert lines == [f"{path}: document 1 (SecretProviderClass/app): ok", f"{path}: {line}"]


def test_file_without_a_class_is_a_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file with no SecretProviderClass at all is reported for the file as a whole."""
    path = write(tmp_path, {"kind": "ConfigMap", "metadata": {"name": "c"}})
    assert lint(capsys, "--quiet", path) == (1, [f"{path}: no document of kind SecretProviderClass"])


def test_unreadable_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing file is a usage error (2), even when the other files are clean."""
    good = write(tmp_path, spc())
    code = main([str(tmp_path / "missing.yaml"), good])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith(f"{tmp_path / 'missing.yaml'}: cannot read:")
    assert captured.out.splitlines() == [f"{good}: document 1 (SecretProviderClass/app): ok"]


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """No file named is a usage error."""
    with pytest.raises(SystemExit) as caught:
        main([])
    assert caught.value.code == 2
    assert "SPC.yaml" in capsys.readouterr().err


def test_console_entry(tmp_path: Path) -> None:
    """`python -m provider lint FILE` runs the linter and returns its exit code."""
    path = write(tmp_path, spc(), spc("bad", roleName=None))
    result = subprocess.run(
        [sys.executable, "-m", "provider", "lint", path], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{path}: document 1 (SecretProviderClass/app): ok",
        f"{path}: document 2 (SecretProviderClass/bad): roleName is required: the Vault role to log in with",
    ]
