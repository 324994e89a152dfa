"""Fixtures of the conformance suite: the driver's Go client, built once, and twin mounts.

The backends (OpenBao, PostgreSQL, the provider process) are the integration suite's
session fixtures, registered for all of tests/ by `tests/conftest.py`.

`driverclient_binary` builds `driverclient/` with `go build` once per session, with
`-mod=readonly`: the driver module is resolved exactly as go.mod and go.sum pin it, from
the Go module proxy on the first build and from Go's caches afterwards. Without Go,
or when the modules cannot be downloaded, the suite is skipped saying so (on CI, where
`CI=true`, it fails instead).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from driver_clients import GoDriverClient, PythonDriverClient
from harness import ProviderProcess, backend_unavailable
from stub_provider import StubProvider
from twins import TwinMounts

from devkit import BackendMissing
from devkit.go_build import go_build

GO_MODULE = Path(__file__).resolve().parent / "driverclient"
_BUILD_TIMEOUT_SECONDS = 900
# How `go` reports a module it could not download (no network, a proxy refusing a host).
_DOWNLOAD_FAILURE = re.compile(
    r"reading https?://\S+: \d{3}|dial tcp|no such host|i/o timeout|GOPROXY=off|proxyconnect"
)


@pytest.fixture(scope="session")
def driverclient_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`go build` of the driver client, once per session; skips (fails on CI) without Go."""
    go = shutil.which("go")
    if go is None:
        backend_unavailable(
            BackendMissing(
                "the conformance suite needs Go (1.25.9 or later) on PATH to build the Secrets Store "
                "CSI driver's client; install it from https://go.dev/dl/"
            )
        )
    output = tmp_path_factory.mktemp("driverclient") / "driverclient"
    done = go_build(go, GO_MODULE, output, _BUILD_TIMEOUT_SECONDS)
    if done.returncode != 0:
        if _DOWNLOAD_FAILURE.search(done.stderr):
            backend_unavailable(
                BackendMissing(
                    "building the driver client needs its Go modules (sigs.k8s.io/secrets-store-csi-driver "
                    "v1.6.0 and its dependencies) from the Go module proxy, and a download failed; "
                    f"check GOPROXY and the network:\n{done.stderr}"
                )
            )
        pytest.fail(f"go build of {GO_MODULE} failed:\n{done.stderr}")
    return output


@pytest.fixture(scope="session")
def go_client(driverclient_binary: Path) -> GoDriverClient:
    return GoDriverClient(driverclient_binary)


@pytest.fixture(scope="session")
def python_client() -> PythonDriverClient:
    return PythonDriverClient()


@pytest.fixture
def stub_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StubProvider]:
    """A stand-in provider on its own socket (a short path: unix socket paths are limited)."""
    with StubProvider(tmp_path_factory.mktemp("stub")) as stub:
        yield stub


@pytest.fixture
def twins(
    provider: ProviderProcess,
    go_client: GoDriverClient,
    python_client: PythonDriverClient,
    stub_provider: StubProvider,
    tmp_path: Path,
) -> TwinMounts:
    """Mount through the driver's Go client and our Python client at once; see `twins.TwinMounts`."""
    return TwinMounts(provider, go_client, python_client, stub_provider, tmp_path)
