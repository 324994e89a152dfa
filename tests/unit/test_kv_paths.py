"""kv2_data_path: where Agent's shim puts `data/` in a template's KV v2 read path."""

from __future__ import annotations

import pytest

from provider.vault.kv_paths import kv2_data_path


@pytest.mark.parametrize(
    ("path", "mount", "expected"),
    [
        pytest.param("secret/app", "secret/", "secret/data/app", id="inserted"),
        pytest.param("secret/team/app", "secret/", "secret/data/team/app", id="nested"),
        pytest.param("secret/data/app", "secret/", "secret/data/app", id="already-data"),
        pytest.param("secret/metadata/app", "secret/", "secret/metadata/app", id="metadata"),
        pytest.param("secret", "secret/", "secret/data", id="the-mount-itself"),
        pytest.param("secret/", "secret/", "secret/data", id="the-mount-with-slash"),
        pytest.param("team/kv/app", "team/kv/", "team/kv/data/app", id="multi-segment-mount"),
        pytest.param("data/app", "data/", "data/data/app", id="mount-named-data"),
        pytest.param("secret/datastore", "secret/", "secret/data/datastore", id="data-prefix-is-not-data"),
        pytest.param("other/app", "secret/", "other/app", id="outside-the-mount"),
        pytest.param("secret/app", "secret", "secret/data/app", id="mount-without-slash"),
    ],
)
def test_kv2_data_path(path: str, mount: str, expected: str) -> None:
    assert kv2_data_path(path, mount) == expected
