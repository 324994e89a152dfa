"""The deployment suites' fixtures: a fake cluster for the provider's own API calls, and providers in it.

"In a cluster" means what a pod sees: KUBERNETES_SERVICE_HOST/PORT pointing at a fake
kube-apiserver over HTTPS (a CA of our own), and service-account files holding a token the
session's issuer minted for the provider's own service account. The fake speaks the real
API's JSON and can deny by RBAC, be unavailable, or lose a create race. Vault is the
session's OpenBao; its TokenReviews go to the session's HTTP apiserver, so the fake here
sees only the provider's own calls. Two providers per module run in one cluster (text and
JSON logs); tests that need a start-up behaviour or a flag start their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_kit import (
    Cluster,
    ClusterCa,
    Launcher,
)
from harness import ProviderProcess, VaultEnv

from devkit import ServiceAccountTokenIssuer, free_port


@pytest.fixture(scope="module")
def cluster_ca() -> ClusterCa:
    return ClusterCa()


@pytest.fixture(scope="module")
def cluster(
    issuer: ServiceAccountTokenIssuer, cluster_ca: ClusterCa, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """The cluster the module providers run in; faults injected by a test are reset after it."""
    shared = Cluster.start(issuer, cluster_ca, tmp_path_factory.mktemp("serviceaccount"))
    yield shared
    shared.stop()


@pytest.fixture(autouse=True)
def _reset_cluster_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    shared = request.getfixturevalue("cluster") if "cluster" in request.fixturenames else None
    yield
    if shared is not None:
        shared.api.reset_faults()


@pytest.fixture
def new_cluster(
    issuer: ServiceAccountTokenIssuer, cluster_ca: ClusterCa, tmp_path: Path
) -> Iterator[Cluster]:
    """A cluster of this test's own, with no Secrets yet."""
    own = Cluster.start(issuer, cluster_ca, tmp_path / "serviceaccount")
    yield own
    own.stop()


@pytest.fixture(scope="module")
def module_launcher(
    issuer: ServiceAccountTokenIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Launcher]:
    started = Launcher(issuer, tmp_path_factory)
    yield started
    started.stop_all()


@pytest.fixture
def launch(issuer: ServiceAccountTokenIssuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    started = Launcher(issuer, tmp_path_factory)
    yield started
    started.stop_all()


@pytest.fixture(scope="module")
def in_cluster(module_launcher: Launcher, cluster: Cluster, vault: VaultEnv) -> ProviderProcess:
    """In the cluster, without -hmac-key-file, with the TokenRequest fallback; text logs."""
    return module_launcher.start(
        "-token-request-fallback", vault_addr=vault.address, env=cluster.env(), key_file=False
    )


@pytest.fixture(scope="module")
def in_cluster_json(
    module_launcher: Launcher, cluster: Cluster, vault: VaultEnv, in_cluster: ProviderProcess
) -> ProviderProcess:
    """A second provider in the same cluster (started after `in_cluster`), logging JSON."""
    return module_launcher.start(
        "-token-request-fallback",
        "-log-format=json",
        vault_addr=vault.address,
        env=cluster.env(),
        key_file=False,
    )


@pytest.fixture(scope="module")
def dead_vault() -> str:
    return f"http://127.0.0.1:{free_port()}"
