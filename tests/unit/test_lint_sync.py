"""lint: `provider: openbao` classes, warnings for unread parameters, `secretObjects` against `objects`.

The secretObjects table starts from a valid class (GOOD_SYNC) and changes one thing per case.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from test_lint import lint, spc, write

OBJECTS = (
    "- objectName: password\n  secretPath: secret/data/db\n  secretKey: password\n"
    "- objectName: tls.crt\n  secretPath: pki/issue/web\n  method: PUT\n  secretKey: certificate\n"
    "- objectName: tls.key\n  secretPath: pki/issue/web\n  method: PUT\n  secretKey: private_key\n"
    "- objectName: bundle\n  secretPath: secret/data/bundle\n  format: files\n"
)
GOOD_SYNC: list[dict[str, Any]] = [
    {"secretName": "db", "type": "Opaque", "data": [{"objectName": "password", "key": "password"}]},
    {
        "secretName": "web-tls",
        "type": "kubernetes.io/tls",
        "data": [{"objectName": "tls.crt", "key": "tls.crt"}, {"objectName": "tls.key", "key": "tls.key"}],
    },
    {"secretName": "bundle.v1", "type": "Opaque", "data": [{"objectName": "bundle/a", "key": "a"}]},
]


def synced(secret_objects: object) -> dict[str, Any]:
    document = spc(objects=OBJECTS)
    document["spec"]["secretObjects"] = secret_objects
    return document


def test_openbao_class_is_linted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """provider: openbao with openbao-csi-provider's parameter names is checked, and clean."""
    path = write(tmp_path, spc(provider="openbao", openbaoAddress="https://bao:8200"))
    assert lint(capsys, path) == (0, [f"{path}: document 1 (SecretProviderClass/app): ok"])
    bad = write(tmp_path, spc(provider="openbao", openbaoSkipTLSVerify="maybe"), name="bad.yaml")
    assert lint(capsys, bad) == (
        1,
        [
            f"{bad}: document 1 (SecretProviderClass/app): "
            "vaultSkipTLSVerify 'maybe' is not a boolean (use true or false)"
        ],
    )


def test_unknown_parameters_are_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A typo is a warning with a suggestion (also under --quiet); the exit code stays 0."""
    path = write(tmp_path, spc(vaultAdress="https://typo:8200", zzz="1"))
    where = f"{path}: document 1 (SecretProviderClass/app)"
    assert lint(capsys, path) == (
        0,
        [
            f"{where}: warning: unknown parameter 'vaultAdress' is ignored; did you mean vaultAddress?",
            f"{where}: warning: unknown parameter 'zzz' is ignored",
            f"{where}: ok",
        ],
    )
    assert lint(capsys, "--quiet", path)[1] == [
        f"{where}: warning: unknown parameter 'vaultAdress' is ignored; did you mean vaultAddress?",
        f"{where}: warning: unknown parameter 'zzz' is ignored",
    ]


def test_typo_warning_comes_with_the_problem_it_causes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, spc(roleName=None, rolename="app"))
    where = f"{path}: document 1 (SecretProviderClass/app)"
    assert lint(capsys, path) == (
        1,
        [
            f"{where}: warning: unknown parameter 'rolename' is ignored; did you mean roleName?",
            f"{where}: roleName is required: the Vault role to log in with",
        ],
    )


def test_good_secret_objects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, synced(GOOD_SYNC))
    assert lint(capsys, path) == (0, [f"{path}: document 1 (SecretProviderClass/app): ok"])


def changed(index: int, field: str, value: Any, item: int | None = None) -> list[dict[str, Any]]:
    """GOOD_SYNC with secretObjects[index] (or its data[item]) field set to value; None removes it."""
    secret_objects = copy.deepcopy(GOOD_SYNC)
    target = secret_objects[index] if item is None else secret_objects[index]["data"][item]
    if value is None:
        del target[field]
    else:
        target[field] = value
    return secret_objects


@pytest.mark.parametrize(
    ("secret_objects", "problems"),
    [
        pytest.param(
            changed(0, "objectName", "pasword", item=0),
            [
                "secretObjects[0].data[0].objectName 'pasword' is not among objects "
                "(objectName: bundle, password, tls.crt, tls.key)"
            ],
            id="unknown-object",
        ),
        pytest.param(
            changed(0, "objectName", None, item=0),
            [
                "secretObjects[0].data[0].objectName is required: "
                "the file of the volume to take the value from"
            ],
            id="no-object-name",
        ),
        pytest.param(
            changed(2, "objectName", "bundle", item=0),
            [
                "secretObjects[2].data[0].objectName 'bundle' is not among objects "
                "(objectName: bundle, password, tls.crt, tls.key)"
            ],
            id="files-object-is-a-directory",
        ),
        *(
            pytest.param(
                changed(0, "key", key, item=0),
                [
                    f"secretObjects[0].data[0].key {key!r} must be a Kubernetes Secret key: letters, digits, "
                    "'-', '_' and '.', at most 253 characters, not '.' or '..'"
                ],
                id=f"key-{label}",
            )
            for key, label in [
                ("a/b", "slash"),
                ("..", "dotdot"),
                (".", "dot"),
                ("", "empty"),
                ("k" * 254, "too-long"),
                ("sp ace", "space"),
            ]
        ),
        pytest.param(
            changed(1, "key", "tls.crt", item=1),
            [
                "secretObjects[1].data[1].key 'tls.crt' is also secretObjects[1].data[0].key",
                "secretObjects[1].data of type kubernetes.io/tls needs the keys tls.key",
            ],
            id="duplicate-key-and-tls-without-key",
        ),
        pytest.param(
            changed(1, "data", [{"objectName": "tls.crt", "key": "cert"}]),
            ["secretObjects[1].data of type kubernetes.io/tls needs the keys tls.crt, tls.key"],
            id="tls-without-both",
        ),
        pytest.param(
            changed(0, "secretName", "DB_Secret"),
            [
                "secretObjects[0].secretName 'DB_Secret' must be a Kubernetes Secret name "
                "(lower-case letters, digits, '-' and '.', at most 253 characters)"
            ],
            id="bad-secret-name",
        ),
        pytest.param(
            changed(0, "secretName", None),
            [
                "secretObjects[0].secretName None must be a Kubernetes Secret name "
                "(lower-case letters, digits, '-' and '.', at most 253 characters)"
            ],
            id="no-secret-name",
        ),
        pytest.param(
            changed(0, "data", []),
            ["secretObjects[0].data must be a non-empty list of objectName and key"],
            id="empty-data",
        ),
        pytest.param({"secretName": "x"}, ["secretObjects must be a list"], id="not-a-list"),
        pytest.param(
            ["x"], ["secretObjects[0] must be a mapping with secretName, type and data"], id="not-a-mapping"
        ),
    ],
)
def test_bad_secret_objects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], secret_objects: object, problems: list[str]
) -> None:
    """Each mistake is a problem naming the document, the secretObjects index and the field."""
    path = write(tmp_path, synced(secret_objects))
    where = f"{path}: document 1 (SecretProviderClass/app)"
    assert lint(capsys, path) == (1, [f"{where}: {problem}" for problem in problems])


def test_secret_objects_checked_beside_other_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A class with a parameter problem still has its secretObjects checked, in the same run."""
    document = synced(changed(0, "key", "a/b", item=0))
    del document["spec"]["parameters"]["roleName"]
    path = write(tmp_path, document)
    _, lines = lint(capsys, path)
    assert [line.split(": ", 2)[2] for line in lines] == [
        "roleName is required: the Vault role to log in with",
        "secretObjects[0].data[0].key 'a/b' must be a Kubernetes Secret key: letters, digits, "
        "'-', '_' and '.', at most 253 characters, not '.' or '..'",
    ]
