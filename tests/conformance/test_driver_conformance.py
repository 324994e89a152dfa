"""Mount through the Secrets Store CSI driver's own Go client, and through ours, and compare.

Every scenario sends one request through the driver's `MountContent` (built from
`driverclient/`, files written by the driver's atomic writer) and through
`provider.driver`, against the real provider process and a real OpenBao. `twins.mount`
asserts that both clients report the same versions or the same error, and wrote
byte-identical trees; the tests then check what that tree must be.

The last part serves deliberately broken responses from a stub provider and shows that
the driver's client refuses them: the suite would fail if our provider ever sent one.
"""

from __future__ import annotations

import base64
import os
import stat
import textwrap
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from driver_clients import (
    FILE_WRITE_ERROR,
    GRPC_PROVIDER_ERROR,
    GoDriverClient,
    MountCall,
    PythonDriverClient,
)
from harness import VaultEnv, unique
from stub_provider import StubProvider, mount_response
from twins import Twin, TwinMounts, assert_conformant
from volume_trees import DATA_DIR, VolumeTree, data_dir_name, file_identities, read_tree

from devkit import PostgresServer
from provider import __version__

pytestmark = [pytest.mark.integration, pytest.mark.conformance]

# The kubelet atomic writer's own entries: the data link and the directory it points at.
WRITER_ENTRIES = ("..<timestamp>", "..data -> ..<timestamp>")
EMPTY = VolumeTree(links={}, internal=(), data={})
# The driver's default --max-call-recv-msg-size.
RECEIVE_LIMIT = 4 * 1024 * 1024


def spc(objects: str, role: str = "app", **parameters: str) -> dict[str, str]:
    """SecretProviderClass parameters; `objects` is the YAML block string of the manifest."""
    return {"roleName": role, "objects": textwrap.dedent(objects).strip() + "\n", **parameters}


def kv_objects(path: str, *names_and_keys: tuple[str, str], mount: str = "secret/data") -> str:
    """Objects reading keys of one KV secret: (objectName, secretKey) pairs."""
    return "".join(
        f"- objectName: {name}\n  secretPath: {mount}/{path}\n  secretKey: {key}\n"
        for name, key in names_and_keys
    )


def links(*names: str) -> dict[str, str]:
    return {name: f"{DATA_DIR}/{name}" for name in names}


def disk_mode(target: Path, path: str) -> int:
    return stat.S_IMODE((target / DATA_DIR / path).stat().st_mode)


# --- KV, paths and modes -----------------------------------------------------------------


def test_two_kv_objects(twins: TwinMounts, vault: VaultEnv) -> None:
    """Two keys of one KV v2 secret become two raw files, mode 0644, a link each, a version each."""
    path = unique("app/conformance-kv")
    vault.put_kv2(path, {"username": "conformance-user", "password": "pw & <tags>\n"})
    twin = twins.mount(spc(kv_objects(path, ("username", "username"), ("password", "password"))))

    tree = twin.tree
    assert twin.go.ok, twin.go
    assert twin.go.runtime_version == __version__
    assert tree.files == {"password": b"pw & <tags>\n", "username": b"conformance-user"}
    assert tree.modes == {"password": 0o644, "username": 0o644}
    assert tree.links == links("password", "username")
    assert tree.internal == WRITER_ENTRIES
    assert set(twin.versions) == {"username", "password"}


def test_nested_object_name(twins: TwinMounts, vault: VaultEnv) -> None:
    """`nested/bar` is a file in a directory below ..data, reached through one top-level link `nested`."""
    path = unique("app/conformance-nested")
    vault.put_kv2(path, {"bar": "nested-value", "top": "top-value"})
    twin = twins.mount(spc(kv_objects(path, ("nested/bar", "bar"), ("top", "top"))))

    tree = twin.tree
    assert tree.files == {"nested/bar": b"nested-value", "top": b"top-value"}
    assert tree.data["nested"].kind == "dir"
    assert tree.links == links("nested", "top")
    for target in twin.targets:
        assert (target / "nested" / "bar").read_bytes() == b"nested-value"
    assert set(twin.versions) == {"nested/bar", "top"}


def test_file_permission_next_to_the_default(twins: TwinMounts, vault: VaultEnv) -> None:
    """Per-object filePermission sets the mode on disk; objects without it get the driver's 0644."""
    path = unique("app/conformance-modes")
    vault.put_kv2(path, {"value": "mode-value"})
    objects = f"""
        - objectName: default
          secretPath: secret/data/{path}
          secretKey: value
        - objectName: private
          secretPath: secret/data/{path}
          secretKey: value
          filePermission: 0600
        - objectName: group-read
          secretPath: secret/data/{path}
          secretKey: value
          filePermission: 0o440
        - objectName: dir/script
          secretPath: secret/data/{path}
          secretKey: value
          filePermission: "0755"
    """
    twin = twins.mount(spc(objects))

    expected = {"default": 0o644, "private": 0o600, "group-read": 0o440, "dir/script": 0o755}
    assert twin.tree.modes == expected
    for target in twin.targets:
        assert {name: disk_mode(target, name) for name in expected} == expected


def test_two_secret_provider_classes_into_two_volumes(twins: TwinMounts, vault: VaultEnv) -> None:
    """One pod, two SPCs, two volumes: each volume holds only its own class's files."""
    first, second = unique("app/conformance-spc-a"), unique("app/conformance-spc-b")
    vault.put_kv2(first, {"value": "from-class-a"})
    vault.put_kv2(second, {"value": "from-class-b"})
    twin_a = twins.mount(spc(kv_objects(first, ("a.txt", "value"))), volume="secrets-a", spc_name="spc-a")
    twin_b = twins.mount(spc(kv_objects(second, ("b.txt", "value"))), volume="secrets-b", spc_name="spc-b")

    assert twin_a.tree.files == {"a.txt": b"from-class-a"}
    assert twin_b.tree.files == {"b.txt": b"from-class-b"}
    assert set(twin_a.versions) == {"a.txt"}
    assert set(twin_b.versions) == {"b.txt"}


# --- Authentication ----------------------------------------------------------------------


def test_wrong_service_account_is_denied_with_vaults_reason(twins: TwinMounts) -> None:
    """A login Vault refuses fails the mount with Vault's reason in the driver's error; nothing is written."""
    twin = twins.mount(
        spc(kv_objects("app/anything", ("value", "value"))), service_account="web", pod_name="web-0"
    )

    go = twin.go
    assert (go.ok, go.grpc_code, go.error_code) == (False, "PERMISSION_DENIED", GRPC_PROVIDER_ERROR)
    assert go.error.startswith("rpc error: code = PermissionDenied desc = login to Vault at ")
    assert 'role "app" on auth mount "kubernetes"' in go.error
    assert "service account team-a/web" in go.error
    assert "service account name not authorized" in go.error
    assert twins.provider.tokens[-1] not in go.error
    assert twin.tree == EMPTY


def test_custom_audience(twins: TwinMounts, vault: VaultEnv) -> None:
    """SPC `audience` selects the kubelet's token for that audience; the role expecting it logs in."""
    path = unique("app/conformance-audience")
    vault.put_kv2(path, {"value": "custom-audience-value"})
    parameters = spc(kv_objects(path, ("value", "value")), role="custom-aud", audience="custom-aud")
    twin = twins.mount(parameters, audience="custom-aud")

    assert twin.tree.files == {"value": b"custom-audience-value"}


def test_jwt_auth(twins: TwinMounts, vault: VaultEnv) -> None:
    """The JWT auth method at `jwt/` takes the same login and gives the same files."""
    path = unique("app/conformance-jwt")
    vault.put_kv2(path, {"value": "read-via-jwt"})
    twin = twins.mount(spc(kv_objects(path, ("value", "value")), role="jwt-app", vaultAuthMountPath="jwt"))

    assert twin.tree.files == {"value": b"read-via-jwt"}


# --- Engines that issue ------------------------------------------------------------------


PKI_OBJECTS = "".join(
    f"""- objectName: {name}
  secretPath: pki/issue/web
  method: PUT
  secretArgs:
    common_name: conformance.example.test
    ttl: 1h
  secretKey: {key}
"""
    for name, key in (("tls.crt", "certificate"), ("tls.key", "private_key"), ("ca.crt", "issuing_ca"))
)
DATABASE_OBJECTS = """- objectName: db/username
  secretPath: database/creds/app
  secretKey: username
- objectName: db/password
  secretPath: database/creds/app
  secretKey: password
"""


def _public_der(key: Any) -> bytes:
    return bytes(
        key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def assert_one_issuance(files: dict[str, bytes]) -> None:
    """Certificate, key and CA of the PKI objects belong together."""
    cert = x509.load_pem_x509_certificate(files["tls.crt"])
    key = serialization.load_pem_private_key(files["tls.key"], password=None)
    common_name = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert common_name == "conformance.example.test"
    assert _public_der(key.public_key()) == _public_der(cert.public_key())
    assert cert.issuer == x509.load_pem_x509_certificate(files["ca.crt"]).subject


def assert_one_lease(database: PostgresServer, files: dict[str, bytes]) -> None:
    """Username and password are one PostgreSQL login that works."""
    username, password = files["db/username"].decode(), files["db/password"].decode()
    assert username.startswith("v-")
    assert database.psql("SELECT current_user;", login=(username, password)) == username


def test_pki_certificate_via_put_with_secret_args(twins: TwinMounts) -> None:
    """PUT pki/issue/web with secretArgs: certificate, key and CA from one issuance, mode 0644."""
    twin = twins.mount(spc(PKI_OBJECTS), shared_response=True)

    assert set(twin.tree.files) == {"tls.crt", "tls.key", "ca.crt"}
    assert_one_issuance(twin.tree.files)


def test_database_credentials_from_one_lease(twins: TwinMounts, database: PostgresServer) -> None:
    """Username and password of database/creds/app come from one lease and log in."""
    twin = twins.mount(spc(DATABASE_OBJECTS), shared_response=True)

    assert set(twin.tree.files) == {"db/username", "db/password"}
    assert twin.tree.links == links("db")
    assert_one_lease(database, twin.tree.files)


def test_kv_database_and_pki_in_one_class(
    twins: TwinMounts, vault: VaultEnv, database: PostgresServer
) -> None:
    """KV, database credentials and a certificate in one SPC: one volume with all of them."""
    path = unique("app/conformance-mixed")
    vault.put_kv2(path, {"api-key": "mixed-api-key"})
    objects = kv_objects(path, ("api-key", "api-key")) + DATABASE_OBJECTS + PKI_OBJECTS
    twin = twins.mount(spc(objects), shared_response=True)

    files = twin.tree.files
    assert set(files) == {"api-key", "db/username", "db/password", "tls.crt", "tls.key", "ca.crt"}
    assert files["api-key"] == b"mixed-api-key"
    assert_one_lease(database, files)
    assert_one_issuance(files)
    assert set(twin.versions) == set(files)


def test_base64_encoding(twins: TwinMounts, vault: VaultEnv) -> None:
    """`encoding: base64` writes the decoded bytes, whatever they are."""
    raw = b"\x00\xff\x10binary\r\n\x80"
    path = unique("app/conformance-base64")
    vault.put_kv2(path, {"blob": base64.b64encode(raw).decode()})
    objects = f"""
        - objectName: blob.bin
          secretPath: secret/data/{path}
          secretKey: blob
          encoding: base64
    """
    twin = twins.mount(spc(objects))

    assert twin.tree.files == {"blob.bin": raw}


# --- Beyond upstream: whole secrets and templates -----------------------------------------


def test_format_files_and_data_through_the_driver(twins: TwinMounts, vault: VaultEnv) -> None:
    """Every key as a file under objectName/ (one link, one version) and the data as JSON, no envelope."""
    path = unique("app/conformance-whole")
    vault.put_kv2(path, {"username": "whole-user", "password": "pw <&>", "port": 5432})
    objects = f"""
        - objectName: db
          secretPath: secret/data/{path}
          format: files
          filePermission: 0o640
        - objectName: db.json
          secretPath: secret/data/{path}
          format: data
    """
    twin = twins.mount(spc(objects))

    assert twin.tree.files == {
        "db/password": b"pw <&>",
        "db/port": b"5432",
        "db/username": b"whole-user",
        "db.json": b'{"password":"pw \\u003c\\u0026\\u003e","port":5432,"username":"whole-user"}',
    }
    assert twin.tree.modes == {"db/password": 0o640, "db/port": 0o640, "db/username": 0o640, "db.json": 0o644}
    assert twin.tree.data["db"].kind == "dir"
    assert twin.tree.links == links("db", "db.json")
    assert set(twin.versions) == {"db", "db.json"}


def test_template_through_the_driver(twins: TwinMounts, vault: VaultEnv) -> None:
    """A template object is one file written by the driver like any other, with its mode and version."""
    path = unique("app/conformance-template")
    vault.put_kv2(path, {"username": "tpl-user", "password": "tpl-pw"})
    objects = f"""
        - objectName: config/app.env
          filePermission: 0600
          template: |
            {{{{- with secret "secret/data/{path}" }}}}
            USER={{{{ .Data.data.username }}}}
            PASSWORD={{{{ .Data.data.password }}}}
            {{{{- end }}}}
    """
    twin = twins.mount(spc(objects))

    assert twin.tree.files == {"config/app.env": b"\nUSER=tpl-user\nPASSWORD=tpl-pw\n"}
    assert twin.tree.modes == {"config/app.env": 0o600}
    assert set(twin.versions) == {"config/app.env"}


# --- Rotation and removal ----------------------------------------------------------------


def test_rotation_rewrites_changes_and_leaves_unchanged_volumes_alone(
    twins: TwinMounts, vault: VaultEnv
) -> None:
    """A changed secret: new bytes, new version, a new ..data. Unchanged: same versions, files untouched."""
    changing, steady = unique("app/conformance-rotating"), unique("app/conformance-steady")
    vault.put_kv2(changing, {"value": "before-rotation"})
    vault.put_kv2(steady, {"value": "never-changes"})
    parameters = spc(kv_objects(changing, ("changing", "value")) + kv_objects(steady, ("steady", "value")))
    first = twins.mount(parameters)
    first_dirs = [data_dir_name(target) for target in first.targets]

    vault.put_kv2(changing, {"value": "after-rotation"})
    second = twins.mount(parameters)

    assert second.tree.files == {"changing": b"after-rotation", "steady": b"never-changes"}
    assert second.versions["changing"] != first.versions["changing"]
    assert second.versions["steady"] == first.versions["steady"]
    assert all(data_dir_name(target) != old for target, old in zip(second.targets, first_dirs, strict=True))
    assert second.tree.internal == WRITER_ENTRIES

    before = [(data_dir_name(target), file_identities(target)) for target in second.targets]
    # The next poll as driver 1.6 makes it, then as a 1.5 rotation reconciler (with old versions).
    third = twins.mount(parameters)
    fourth = twins.mount(parameters, old_versions=third.versions)

    assert third.versions == second.versions
    assert fourth.versions == second.versions
    assert [(data_dir_name(target), file_identities(target)) for target in fourth.targets] == before


def test_object_dropped_from_the_class_disappears(twins: TwinMounts, vault: VaultEnv) -> None:
    """Objects left out of a later Mount lose their files and links; the old data directory goes."""
    path = unique("app/conformance-dropped")
    vault.put_kv2(path, {"keep": "kept-value", "drop": "dropped-value", "deep": "deep-value"})
    every = kv_objects(path, ("keep", "keep"), ("drop", "drop"), ("gone/deep", "deep"))
    first = twins.mount(spc(every))
    assert first.tree.links == links("drop", "gone", "keep")

    second = twins.mount(spc(kv_objects(path, ("keep", "keep"))))

    tree = second.tree
    assert tree.files == {"keep": b"kept-value"}
    assert tree.links == links("keep")
    assert tree.internal == WRITER_ENTRIES
    assert set(tree.data) == {".", "keep"}
    assert set(second.versions) == {"keep"}
    for target in second.targets:
        assert sorted(os.listdir(target)) == sorted(["keep", DATA_DIR, data_dir_name(target)])


def test_mode_only_change_waits_for_new_contents(twins: TwinMounts, vault: VaultEnv) -> None:
    """The driver's writer compares contents only: a new filePermission alone leaves the old mode.

    Our Python client applies it at once (a documented difference of provider/driver/writer.py),
    so this is the one scenario whose trees are compared by hand: same files, different modes.
    """
    path = unique("app/conformance-mode-change")
    vault.put_kv2(path, {"value": "mode-change-value"})
    objects = kv_objects(path, ("value", "value"))
    first = twins.mount(spc(objects))
    second = twins.mount(spc(objects + "  filePermission: 0600\n"), compare=False)

    go_tree, python_tree = read_tree(second.go_target), read_tree(second.python_target)
    assert second.go.ok
    assert second.python.ok
    assert second.go.versions == second.python.versions
    assert go_tree.files == python_tree.files == {"value": b"mode-change-value"}
    assert data_dir_name(second.go_target) == data_dir_name(first.go_target)
    assert go_tree.modes == {"value": 0o644}
    assert python_tree.modes == {"value": 0o600}


# --- The driver's 4 MiB receive limit ----------------------------------------------------


def test_response_over_the_receive_limit_fails_with_our_message(twins: TwinMounts, vault: VaultEnv) -> None:
    """Files over 4 MiB fail with the provider's own RESOURCE_EXHAUSTED text, not gRPC's bare limit."""
    parts, largest = unique("app/conformance-parts"), unique("app/conformance-largest")
    vault.put_kv2(parts, {"chunk": "p" * 1_000_000})
    vault.put_kv2(largest, {"chunk": "L" * 1_200_000})
    objects = kv_objects(parts, *((f"part-{n}", "chunk") for n in range(4)))
    objects += kv_objects(largest, ("largest.bin", "chunk"))
    twin = twins.mount(spc(objects))

    go = twin.go
    assert (go.ok, go.grpc_code, go.error_code) == (False, "RESOURCE_EXHAUSTED", GRPC_PROVIDER_ERROR)
    assert go.error.startswith("rpc error: code = ResourceExhausted desc = the volume would hold ")
    assert f"over the driver's {RECEIVE_LIMIT}-byte receive limit" in go.error
    assert "(largest file: 'largest.bin', 1200000 bytes)" in go.error
    assert "--max-call-recv-msg-size" in go.error
    assert "received message larger than max" not in go.error
    assert twin.tree == EMPTY


def test_response_just_under_the_receive_limit_is_mounted(twins: TwinMounts, vault: VaultEnv) -> None:
    """What the provider lets through, the driver accepts: four files of 1,040,000 bytes."""
    path = unique("app/conformance-near-limit")
    vault.put_kv2(path, {"chunk": "n" * 1_040_000})
    twin = twins.mount(spc(kv_objects(path, *((f"part-{n}", "chunk") for n in range(4)))))

    assert twin.go.ok, twin.go
    assert {name: len(data) for name, data in twin.tree.files.items()} == {
        f"part-{n}": 1_040_000 for n in range(4)
    }


# --- Broken responses: the driver's client must refuse them -------------------------------
#
# A stub provider serves canned responses. These tests are the proof that the checks
# above have teeth: a provider answering like this would fail the scenarios.

ATTRIBUTES = '{"csi.storage.k8s.io/pod.name":"app-0","csi.storage.k8s.io/pod.namespace":"team-a"}'
GOOD_FILE = ("good", 0o644, b"good-value")


def mount_through(
    client: GoDriverClient | PythonDriverClient, stub: StubProvider, root: Path
) -> tuple[Any, Path]:
    """Mount into `<root>/<client>/pod/volume` through the stub; return the outcome and the target."""
    target = root / client.name / "pod" / "volume"
    return client.mount(stub.directory, MountCall(ATTRIBUTES, "null", target)), target


def written_paths(root: Path) -> list[str]:
    """Every path below `root` except `<client>/pod/volume`, the directories the clients create."""
    return sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.relative_to(root).parts[1:] not in {(), ("pod",), ("pod", "volume")}
    )


@pytest.mark.parametrize(
    ("files", "versions", "error_code", "go_error"),
    [
        pytest.param(
            [GOOD_FILE], {}, GRPC_PROVIDER_ERROR, "missing object versions", id="no-object-versions"
        ),
        pytest.param(
            [GOOD_FILE, ("../escape", 0o644, b"escaped")],
            {"good": "v1", "escape": "v1"},
            FILE_WRITE_ERROR,
            "invalid path: must not contain '..': ../escape",
            id="dot-dot-path",
        ),
        pytest.param(
            [("nested/../../escape", 0o644, b"escaped")],
            {"escape": "v1"},
            FILE_WRITE_ERROR,
            "invalid path: must not contain '..': nested/../../escape",
            id="dot-dot-inside-a-path",
        ),
        pytest.param(
            [("..data/escape", 0o644, b"escaped")],
            {"escape": "v1"},
            FILE_WRITE_ERROR,
            "invalid path: must not start with '..': ..data/escape",
            id="writer-reserved-name",
        ),
        pytest.param(
            [("{outside}/escape", 0o644, b"escaped")],
            {"escape": "v1"},
            FILE_WRITE_ERROR,
            "invalid path: must be relative path: {outside}/escape",
            id="absolute-path",
        ),
        pytest.param(
            [("a/./b", 0o644, b"unclean")],
            {"b": "v1"},
            FILE_WRITE_ERROR,
            'invalid filepath: "a/./b"',
            id="unclean-path",
        ),
    ],
)
def test_broken_response_fails_the_mount_and_writes_nothing(
    go_client: GoDriverClient,
    python_client: PythonDriverClient,
    stub_provider: StubProvider,
    tmp_path: Path,
    files: list[tuple[str, int, bytes]],
    versions: dict[str, str],
    error_code: str,
    go_error: str,
) -> None:
    """The driver's client refuses the response with its reason; nothing lands in or outside the volume."""
    outside = tmp_path / "outside"
    files = [(path.format(outside=outside), mode, data) for path, mode, data in files]
    stub_provider.answer(mount_response(files, versions))
    go, _ = mount_through(go_client, stub_provider, tmp_path)
    python, _ = mount_through(python_client, stub_provider, tmp_path)

    assert (go.ok, go.grpc_code, go.error_code) == (False, "UNKNOWN", error_code), go
    assert go.error == go_error.format(outside=outside)
    assert (python.ok, python.grpc_code, python.error_code) == (False, "UNKNOWN", error_code), python
    assert written_paths(tmp_path) == []
    assert stub_provider.requests == 2


def test_provider_error_code_fails_the_mount(
    go_client: GoDriverClient, python_client: PythonDriverClient, stub_provider: StubProvider, tmp_path: Path
) -> None:
    """A non-empty `error.code` fails the mount with that code as the driver's reason, files or not."""
    stub_provider.answer(mount_response([GOOD_FILE], {"good": "v1"}, error_code="VaultSaysNo"))
    go, _ = mount_through(go_client, stub_provider, tmp_path)
    python, _ = mount_through(python_client, stub_provider, tmp_path)

    assert (go.ok, go.grpc_code, go.error_code) == (False, "UNKNOWN", "VaultSaysNo")
    assert go.error == "mount request failed with provider error code VaultSaysNo"
    assert (python.ok, python.error_code, python.error) == (False, go.error_code, go.error)
    assert written_paths(tmp_path) == []


def test_sound_stub_response_is_mounted(
    go_client: GoDriverClient, python_client: PythonDriverClient, stub_provider: StubProvider, tmp_path: Path
) -> None:
    """The control for the broken responses: a sound canned response mounts through both clients."""
    files = [GOOD_FILE, ("nested/file", 0o600, b"\x00nested\xff"), ("empty", 0o640, b"")]
    stub_provider.answer(mount_response(files, {"good": "v1", "nested/file": "v2", "empty": "v3"}))
    go, go_target = mount_through(go_client, stub_provider, tmp_path)
    python, python_target = mount_through(python_client, stub_provider, tmp_path)
    assert_conformant(Twin(go, python, go_target, python_target))

    tree = read_tree(go_target)
    assert go.runtime_version == "0.0.0-stub"
    assert go.versions == {"good": "v1", "nested/file": "v2", "empty": "v3"}
    assert tree.files == {"good": b"good-value", "nested/file": b"\x00nested\xff", "empty": b""}
    assert tree.modes == {"good": 0o644, "nested/file": 0o600, "empty": 0o640}
    assert tree.links == links("empty", "good", "nested")


def test_versions_without_files_succeed_and_write_nothing(
    go_client: GoDriverClient, python_client: PythonDriverClient, stub_provider: StubProvider, tmp_path: Path
) -> None:
    """Empty `files` with versions is a success that leaves the volume empty (legacy providers)."""
    stub_provider.answer(mount_response([], {"legacy": "v1"}))
    go, go_target = mount_through(go_client, stub_provider, tmp_path)
    python, python_target = mount_through(python_client, stub_provider, tmp_path)
    assert_conformant(Twin(go, python, go_target, python_target))

    assert go.versions == {"legacy": "v1"}
    assert read_tree(go_target) == EMPTY


@pytest.mark.parametrize(
    "python_file",
    [
        pytest.param(("same", 0o644, b"one byte differs!"), id="contents"),
        pytest.param(("same", 0o600, b"one byte differs?"), id="mode"),
        pytest.param(("other", 0o644, b"one byte differs?"), id="path"),
    ],
)
def test_tree_comparison_catches_a_single_difference(
    go_client: GoDriverClient,
    python_client: PythonDriverClient,
    stub_provider: StubProvider,
    tmp_path: Path,
    python_file: tuple[str, int, bytes],
) -> None:
    """The twin comparison is not vacuous: one byte, one mode or one name apart fails it."""
    stub_provider.answer(mount_response([("same", 0o644, b"one byte differs?")], {"same": "v1"}))
    go, go_target = mount_through(go_client, stub_provider, tmp_path)
    stub_provider.answer(mount_response([python_file], {"same": "v1"}))
    python, python_target = mount_through(python_client, stub_provider, tmp_path)

    assert go.ok
    assert python.ok
    with pytest.raises(AssertionError):
        assert_conformant(Twin(go, python, go_target, python_target))
