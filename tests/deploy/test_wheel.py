"""The wheel ships the provider and nothing else: no devkit, no tests, no benchmarks.

Built from this checkout with `pip wheel --no-deps --no-build-isolation` (setuptools
from the dev environment, no network), then read as the zip it is.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("vault_csi_provider-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_the_wheel_holds_only_the_provider_package(wheel_names: list[str]) -> None:
    """Every module is under provider/; devkit/, tests/ and bench/ stay in the checkout."""
    top_levels = {
        name.split("/", 1)[0] for name in wheel_names if not name.split("/", 1)[0].endswith(".dist-info")
    }
    assert top_levels == {"provider"}
    assert not [name for name in wheel_names if "devkit" in name or name.endswith("demo.py")]


def test_the_wheel_holds_every_layer(wheel_names: list[str]) -> None:
    """The layer packages and the generated protobuf modules are all in."""
    packages = {name.rsplit("/", 1)[0] for name in wheel_names if name.endswith("/__init__.py")}
    assert {
        "provider",
        "provider/serve",
        "provider/tools",
        "provider/tools/driver",
        "provider/mount",
        "provider/vault",
        "provider/request",
        "provider/render",
        "provider/render/templates",
        "provider/v1alpha1",
    } <= packages
