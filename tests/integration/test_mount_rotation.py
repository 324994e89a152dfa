"""Rotation polls through the real provider: changed secrets rewrite, unchanged ones keep their
versions, one failing object fails the Mount, parallel Mounts all succeed.

Every test calls the provider over its unix socket the way the Secrets Store CSI driver
does (attributes built by `provider.tools.driver`, the driver's response checks and atomic
writer), logging in with a freshly minted service-account token; helpers are in `mounts`.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from harness import ProviderProcess, VaultEnv, unique
from mounts import contents, mount, mount_error, spc

from provider.tools.driver import DATA_DIR

pytestmark = pytest.mark.integration


def _two_objects(changing: str, steady: str) -> dict[str, str]:
    return spc(f"""
        - objectName: changing
          secretPath: secret/data/{changing}
          secretKey: value
        - objectName: steady
          secretPath: secret/data/{steady}
          secretKey: value
    """)


def test_rotation_rewrites_a_changed_secret(
    provider: ProviderProcess, vault: VaultEnv, tmp_path: Path
) -> None:
    """A secret changed between two Mounts gets new content and version; the other keeps its version."""
    changing, steady = unique("app/rotating"), unique("app/steady")
    vault.put_kv2(changing, {"value": "before-rotation"})
    vault.put_kv2(steady, {"value": "never-changes"})
    volume = tmp_path / "volume"
    first = mount(provider, _two_objects(changing, steady), target_dir=volume)
    vault.put_kv2(changing, {"value": "after-rotation"})
    second = mount(provider, _two_objects(changing, steady), target_dir=volume)

    assert contents(first) == {"changing": b"before-rotation", "steady": b"never-changes"}
    assert contents(second) == {"changing": b"after-rotation", "steady": b"never-changes"}
    assert second.versions["changing"] != first.versions["changing"]
    assert second.versions["steady"] == first.versions["steady"]
    assert second.changed
    assert (volume / "changing").read_bytes() == b"after-rotation"


def test_unchanged_secrets_keep_versions_and_volume(
    provider: ProviderProcess, vault: VaultEnv, tmp_path: Path
) -> None:
    """Mounting unchanged secrets again gives identical versions (for any pod) and rewrites nothing."""
    changing, steady = unique("app/still"), unique("app/also-still")
    vault.put_kv2(changing, {"value": "still-value-1"})
    vault.put_kv2(steady, {"value": "still-value-2"})
    volume = tmp_path / "volume"
    first = mount(provider, _two_objects(changing, steady), target_dir=volume)
    data_dir = os.readlink(volume / DATA_DIR)
    second = mount(provider, _two_objects(changing, steady), target_dir=volume)
    other_pod = mount(provider, _two_objects(changing, steady), pod_name="app-1")

    assert first.changed is True
    assert second.changed is False
    assert second.versions == first.versions
    assert other_pod.versions == first.versions
    assert os.readlink(volume / DATA_DIR) == data_dir


def test_one_failing_object_fails_the_whole_mount(
    provider: ProviderProcess, vault: VaultEnv, tmp_path: Path
) -> None:
    """One failing object of three fails the Mount; nothing is written to the volume."""
    path = unique("app/partial")
    vault.put_kv2(path, {"a": "value-a", "c": "value-c"})
    volume = tmp_path / "volume"
    error = mount_error(
        provider,
        spc(f"""
            - objectName: a
              secretPath: secret/data/{path}
              secretKey: a
            - objectName: b
              secretPath: secret/data/{path}-missing
              secretKey: b
            - objectName: c
              secretPath: secret/data/{path}
              secretKey: c
        """),
        target_dir=volume,
    )

    assert error.code == grpc.StatusCode.NOT_FOUND, error.message
    assert 'objects[1] "b"' in error.message
    assert list(volume.iterdir()) == []


def test_parallel_mounts_all_succeed(provider: ProviderProcess, vault: VaultEnv) -> None:
    """Twenty Mounts from twenty pods at once all get their files."""
    path = unique("app/parallel")
    vault.put_kv2(path, {"user": "parallel-user", "password": "parallel-password"})
    parameters = spc(f"""
        - objectName: user
          secretPath: secret/data/{path}
          secretKey: user
        - objectName: password
          secretPath: secret/data/{path}
          secretKey: password
    """)
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda i: mount(provider, parameters, pod_name=f"app-{i}"), range(20)))

    assert all(contents(r) == {"user": b"parallel-user", "password": b"parallel-password"} for r in results)
    assert len({tuple(sorted(r.versions.items())) for r in results}) == 1
