"""What a volume's polls reuse from one another: its plan and lease keys, its token key and JWT digest.

The reuse is keyed on the request configuration object (`parse_mount_request` hands out
one per distinct request) and checked against everything else the reused values derive
from, so these tests change each input in turn and count the builds; the last ones show,
through the Mounter over a FakeVault, that a rotated JWT is still proven by a login.
"""

from __future__ import annotations

import pytest
from fake_vault import FakeVault
from inprocess_kit import ISSUER, NAMESPACE, POD, composed, config_for, mount_request, spc

from provider.mount.lease_cache import LeaseKey
from provider.mount.per_volume import VOLUMES_KEPT
from provider.mount.plan import MountPlan
from provider.mount.prepared import PreparedMounts
from provider.request.mount_request import MountConfig
from provider.tools.driver import PodInfo
from provider.vault.deadline import Deadline
from provider.vault.target import VaultTarget

TARGET = VaultTarget("http://vault.test:8200", "flag")
JWT = ISSUER.mint(NAMESPACE, POD.service_account, POD.name, POD.uid)
PLAIN = spc(
    """
    - objectName: user
      secretPath: secret/data/app
      secretKey: username
    """
)
TEMPLATED = spc(
    """
    - objectName: app.env
      template: |
        {{- with secret "secret/app" -}}USER={{ .Data.data.username }}{{- end }}
    """
)


class CountedBuilds:
    """A `build` for PreparedMounts that plans without Vault and counts its calls."""

    def __init__(self, config: MountConfig) -> None:
        self.config = config
        self.calls = 0

    def __call__(self) -> tuple[MountPlan, list[LeaseKey]]:
        self.calls += 1
        plan = MountPlan.of(self.config.objects)
        keys = [LeaseKey(TARGET.address, "", "kubernetes", "app", "id-1", "pod:x", r) for r in plan.requests]
        return plan, keys


def config(parameters: dict[str, str] = PLAIN, pod: PodInfo = POD) -> MountConfig:
    jwt = JWT if pod is POD else ISSUER.mint(pod.namespace, pod.service_account, pod.name, pod.uid)
    return config_for(mount_request(parameters, pod=pod, jwt=jwt))


def test_a_volumes_polls_share_one_plan_and_its_keys() -> None:
    """The same request parsed again is the same configuration, and its plan is built once."""
    prepared = PreparedMounts()
    first_config = config()
    builds = CountedBuilds(first_config)
    first = prepared.plan_and_keys(first_config, TARGET, "kubernetes", "id-1", builds)
    again = prepared.plan_and_keys(config(), TARGET, "kubernetes", "id-1", builds)
    assert config() is first_config
    assert builds.calls == 1
    assert again[0] is first[0]
    assert again[1] is first[1]
    assert [key.request.path for key in first[1]] == ["/v1/secret/data/app"]


@pytest.mark.parametrize(
    ("target", "auth_mount", "identity"),
    [
        pytest.param(VaultTarget(TARGET.address, "flag", namespace="ns1"), "kubernetes", "id-1", id="target"),
        pytest.param(TARGET, "jwt", "id-1", id="auth-mount"),
        pytest.param(TARGET, "kubernetes", "id-2", id="identity"),
    ],
)
def test_any_other_input_builds_afresh(target: VaultTarget, auth_mount: str, identity: str) -> None:
    """Keys name the target, the auth mount and the identity: a change in one is a new build."""
    prepared = PreparedMounts()
    builds = CountedBuilds(config())
    prepared.plan_and_keys(builds.config, TARGET, "kubernetes", "id-1", builds)
    prepared.plan_and_keys(builds.config, target, auth_mount, identity, builds)
    assert builds.calls == 2


def test_another_pod_is_another_configuration() -> None:
    other_pod = PodInfo(NAMESPACE, "app-1", "5e0b8f7c-2a1d-4e3f-8b9a-0c1d2e3f4a5b", "app")
    prepared = PreparedMounts()
    mine, theirs = CountedBuilds(config()), CountedBuilds(config(pod=other_pod))
    assert mine.config is not theirs.config
    prepared.plan_and_keys(mine.config, TARGET, "kubernetes", "id-1", mine)
    prepared.plan_and_keys(theirs.config, TARGET, "kubernetes", "id-1", theirs)
    prepared.plan_and_keys(mine.config, TARGET, "kubernetes", "id-1", mine)
    assert (mine.calls, theirs.calls) == (1, 1)


def test_a_templates_plan_is_built_on_every_poll() -> None:
    """Which KV mounts are version 2 may change between polls, and a template's reads follow it."""
    prepared = PreparedMounts()
    builds = CountedBuilds(config(TEMPLATED))
    for _ in range(3):
        prepared.plan_and_keys(builds.config, TARGET, "kubernetes", "id-1", builds)
    assert builds.calls == 3


def test_the_memory_is_bounded() -> None:
    """Up to VOLUMES_KEPT configurations are kept; one more and the oldest must be built again."""
    prepared = PreparedMounts()
    pods = [PodInfo(NAMESPACE, f"app-{n}", f"uid-{n}", "app") for n in range(VOLUMES_KEPT)]
    builds = [CountedBuilds(config(pod=pod)) for pod in pods]
    for build in [*builds, builds[0]]:
        prepared.plan_and_keys(build.config, TARGET, "kubernetes", "id-1", build)
    assert builds[0].calls == 1
    newcomer = CountedBuilds(config(pod=PodInfo(NAMESPACE, "app-new", "uid-new", "app")))
    prepared.plan_and_keys(newcomer.config, TARGET, "kubernetes", "id-1", newcomer)
    prepared.plan_and_keys(builds[0].config, TARGET, "kubernetes", "id-1", builds[0])
    assert builds[0].calls == 2


def test_a_rotated_jwt_is_proven_by_one_login(fake: FakeVault) -> None:
    """The token key and JWT digest kept for a configuration do not outlive its JWT: with the TokenRequest
    fallback one configuration (no driver token) meets each JWT the requester hands out."""
    rotated = ISSUER.mint(NAMESPACE, POD.service_account, POD.name, POD.uid)
    handed = iter([JWT, JWT, rotated, rotated])

    def requester(*_: object) -> str:
        return next(handed)

    with composed(fake, "-token-request-fallback", token_requester=requester) as provider:
        request = config_for(mount_request(PLAIN, jwt=""), token_optional=True)
        for _ in range(4):
            result = provider.mounter.mount(request, Deadline(10))
            assert [f.contents for f in result.files] == [b"app"]
    assert rotated != JWT
    assert [login.body["jwt"] for login in fake.logins] == [JWT, rotated]
