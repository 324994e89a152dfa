"""provider.request.cache_policy: credentialScope and refreshInterval as the request parser reads them."""

from __future__ import annotations

import pytest
from test_spc import error_of, parse

from provider.request.cache_policy import CachePolicy


def test_defaults_keep_per_pod_and_read_every_poll() -> None:
    """An SPC that says nothing keeps today's behaviour: per-pod credentials, static reads on every poll."""
    assert parse().cache_policy == CachePolicy("pod", 0.0)


@pytest.mark.parametrize(
    ("changes", "policy"),
    [
        pytest.param({"credentialScope": "pod"}, CachePolicy("pod", 0.0), id="pod"),
        pytest.param({"credentialScope": "serviceAccount"}, CachePolicy("serviceAccount", 0.0), id="sa"),
        pytest.param({"credentialScope": ""}, CachePolicy("pod", 0.0), id="empty-scope"),
        pytest.param({"refreshInterval": "5m"}, CachePolicy("pod", 300.0), id="5m"),
        pytest.param({"refreshInterval": "1m30s"}, CachePolicy("pod", 90.0), id="1m30s"),
        pytest.param({"refreshInterval": "0"}, CachePolicy("pod", 0.0), id="zero"),
        pytest.param({"refreshInterval": "24h"}, CachePolicy("pod", 86400.0), id="a-day"),
        pytest.param(
            {"credentialScope": "serviceAccount", "refreshInterval": "750ms"},
            CachePolicy("serviceAccount", 0.75),
            id="both",
        ),
    ],
)
def test_policy_parameters(changes: dict[str, str], policy: CachePolicy) -> None:
    assert parse(**changes).cache_policy == policy


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            {"credentialScope": "ServiceAccount"},
            "credentialScope 'ServiceAccount' must be pod (the default) or serviceAccount",
            id="case",
        ),
        pytest.param(
            {"credentialScope": "namespace"},
            "credentialScope 'namespace' must be pod (the default) or serviceAccount",
            id="unknown-scope",
        ),
        pytest.param(
            {"refreshInterval": "5"},
            "refreshInterval '5' must be a Go duration between 0s and 24h, such as 30s or 5m",
            id="no-unit",
        ),
        pytest.param(
            {"refreshInterval": "-1m"},
            "refreshInterval '-1m' must be a Go duration between 0s and 24h, such as 30s or 5m",
            id="negative",
        ),
        pytest.param(
            {"refreshInterval": "25h"},
            "refreshInterval '25h' must be a Go duration between 0s and 24h, such as 30s or 5m",
            id="over-a-day",
        ),
    ],
)
def test_bad_policy_parameters(changes: dict[str, str], message: str) -> None:
    """A bad value is refused before any network call, quoting what was written."""
    assert error_of(**changes) == message


def test_scope_names_the_pod_or_the_workload_identity() -> None:
    """Per pod the UID decides; shared, the namespace, service account and audience do (never the pod)."""
    assert CachePolicy("pod").scope_of("team-a", "app", "vault", "uid-1") == "pod:uid-1"
    shared = CachePolicy("serviceAccount")
    assert shared.scope_of("team-a", "app", "vault", "uid-1") == shared.scope_of(
        "team-a", "app", "vault", "uid-2"
    )
    others = {
        shared.scope_of("team-b", "app", "vault", "uid-1"),
        shared.scope_of("team-a", "web", "vault", "uid-1"),
        shared.scope_of("team-a", "app", "custom", "uid-1"),
    }
    assert len(others) == 3
    assert shared.scope_of("team-a", "app", "vault", "uid-1") not in others
