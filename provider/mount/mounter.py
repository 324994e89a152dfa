"""One Mount: a token for the pod, each distinct request once (or kept), files and versions.

Orchestration only: the target in `target_policy`, tokens in `pod_tokens`, the plan in
`plan`, kept dynamic secrets in `leases`, file contents in `object_files`, versions in
`render.version_hmac`. A Mount returns every file or raises one error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from provider.errors import InvalidRequest, PermissionDenied, ProviderError
from provider.mount.counters import MountCounters
from provider.mount.lease_cache import LeaseKey
from provider.mount.leases import Fetched, LeaseKeeper, Source
from provider.mount.object_files import object_files, versioned_content
from provider.mount.per_volume import PerVolume
from provider.mount.plan import MountPlan
from provider.mount.pod_tokens import PodToken, PodTokens
from provider.mount.prepared import PreparedMounts
from provider.mount.read_errors import read_error
from provider.mount.rendered import answer_signature
from provider.mount.target_policy import KnownTargets
from provider.render.file_paths import path_conflicts
from provider.render.version_hmac import object_version
from provider.request.mount_request import MountConfig
from provider.request.objects import SecretObject
from provider.request.vault_request import VaultRequest
from provider.settings import Settings
from provider.vault.client import VaultClient
from provider.vault.deadline import Deadline
from provider.vault.kv_paths import KvV2Paths
from provider.vault.replies import VaultReply
from provider.vault.session import VaultSession
from provider.vault.target import VaultTarget

__all__ = ["ABSENT_VERSION", "MountResult", "MountedFile", "Mounter", "ObjectRecord"]

# The version of an optional object whose secret does not exist: fixed, so polls change nothing.
ABSENT_VERSION = "absent"

log = logging.getLogger("provider.mount")


@dataclass(frozen=True)
class MountedFile:
    path: str
    mode: int
    contents: bytes = field(repr=False)


@dataclass(frozen=True)
class ObjectRecord:
    """What one object of a Mount read, for the audit record: never a value."""

    name: str
    path: str
    method: str
    version: str
    source: Source


@dataclass(frozen=True)
class MountResult:
    files: tuple[MountedFile, ...]
    versions: tuple[tuple[str, str], ...]  # (object id, version)
    # What `records` is made of: built only when asked for, as only an audit sink reads them.
    plan: MountPlan = field(repr=False, compare=False)
    fetched: Mapping[VaultRequest, Fetched] = field(repr=False, compare=False)

    @cached_property
    def records(self) -> tuple[ObjectRecord, ...]:
        """What each object read, in object order."""
        return tuple(
            ObjectRecord(planned.obj.name, sent.path, sent.method, version, self.fetched[sent].source)
            for planned, (_, version) in zip(self.plan.objects, self.versions, strict=True)
            for sent in planned.sent
        )


class Mounter:
    """Runs Mounts against Vault; shared by all RPCs (holds no per-Mount state)."""

    def __init__(
        self,
        settings: Settings,
        vault: VaultClient,
        hmac_key: bytes,
        tokens: PodTokens,
        leases: LeaseKeeper,
        kv2: KvV2Paths,
        counters: MountCounters,
    ) -> None:
        self._settings = settings
        self._vault = vault
        self._hmac_key = hmac_key
        self._tokens = tokens
        self._leases = leases
        self._kv2 = kv2
        self._counters = counters
        self._targets = KnownTargets(settings)
        self._prepared = PreparedMounts()
        # Each volume's last files and versions, with what its answers said (`rendered`).
        self._rendered: PerVolume[tuple[tuple[MountedFile, ...], tuple[tuple[str, str], ...]]] = PerVolume()

    @property
    def requests_tokens(self) -> bool:
        """Whether a Mount without a driver token can get one from the TokenRequest API."""
        return self._tokens.requests_tokens

    def mount(self, config: MountConfig, deadline: Deadline) -> MountResult:
        target = self._targets.resolve(config.vault_overrides)
        auth_mount = config.auth_mount or self._settings.vault_mount.strip("/")
        pod = self._tokens.token_for(config, target, auth_mount, deadline)
        sensitive = _sensitive(config, pod)
        try:
            plan, fetched = self._fetch(config, target, deadline, auth_mount, pod, sensitive)
        except PermissionDenied:
            if not pod.from_cache:
                raise
            # The cached token may have been revoked: one fresh login, one retry.
            fresh = self._tokens.relogin(config, target, auth_mount, pod, deadline)
            if fresh is None:
                raise
            pod, sensitive = fresh, _sensitive(config, fresh)
            plan, fetched = self._fetch(config, target, deadline, auth_mount, pod, sensitive)
        return self._result(config, plan, fetched, sensitive)

    def _fetch(
        self,
        config: MountConfig,
        target: VaultTarget,
        deadline: Deadline,
        auth_mount: str,
        pod: PodToken,
        sensitive: list[str],
    ) -> tuple[MountPlan, dict[VaultRequest, Fetched]]:
        """The plan, and each distinct request's answer: kept, or fetched in parallel with the pod's token.

        In parallel from this thread: every request goes out before any answer is read (`lockstep`).
        """
        session = VaultSession(self._vault, target, deadline, pod.token.value)
        plan, keys = self._prepared.plan_and_keys(
            config,
            target,
            auth_mount,
            pod.token.identity,
            lambda: _plan_and_keys(config, target, auth_mount, pod.token.identity, self._kv2, session),
        )
        policy = config.cache_policy
        requests = plan.requests
        outcomes = self._leases.fetch_all(keys, session, policy.refresh_seconds)
        for outcome in outcomes:
            if isinstance(outcome, Fetched) and outcome.source != "new":
                self._counters.cache_lookup("read" if outcome.static else "lease", "hit")
        answers = {}
        # In object order, so the error reported is the first object's.
        for request, outcome in zip(requests, outcomes, strict=True):
            if isinstance(outcome, ProviderError):
                if outcome.status != 404 or request not in plan.optional_only:
                    raise read_error(plan.first_user[request], request, outcome, sensitive) from None
                outcome = Fetched(VaultReply(404, None), "absent")
            answers[request] = outcome
        return plan, answers

    def _result(
        self, config: MountConfig, plan: MountPlan, fetched: dict[VaultRequest, Fetched], sensitive: list[str]
    ) -> MountResult:
        files, versions = self._rendered.get(
            config, answer_signature(plan, fetched), lambda: self._render(config, plan, fetched, sensitive)
        )
        return MountResult(files, versions, plan, fetched)

    def _render(
        self, config: MountConfig, plan: MountPlan, fetched: dict[VaultRequest, Fetched], sensitive: list[str]
    ) -> tuple[tuple[MountedFile, ...], tuple[tuple[str, str], ...]]:
        files: list[MountedFile] = []
        versions = []
        for planned in plan.objects:
            obj = planned.obj
            answers = planned.answers(fetched)
            if any(answer.source == "absent" for answer in answers.values()):
                # An optional object whose secret does not exist (yet): no file, a version that says so.
                written, version = [], ABSENT_VERSION
            else:
                payloads = {named: answer.reply.payload for named, answer in answers.items()}
                written = object_files(obj, payloads, sensitive, self._settings.max_file_bytes)
                version = object_version(self._hmac_key, obj.fingerprint, versioned_content(obj, written))
            files.extend(
                MountedFile(path, obj.file_mode or config.default_mode, data) for path, data in written
            )
            versions.append((obj.name, version))
        _check_volume(config, plan, files, versions)
        return tuple(files), tuple(versions)


def _plan_and_keys(
    config: MountConfig,
    target: VaultTarget,
    auth_mount: str,
    identity: str,
    kv2: KvV2Paths,
    session: VaultSession,
) -> tuple[MountPlan, list[LeaseKey]]:
    """What each object sends, and the lease-cache key of each distinct request, in object order."""
    plan = MountPlan.of(config.objects, lambda request: kv2.resolve(session, request))
    log.debug("%d objects need %d distinct Vault requests", len(config.objects), len(plan.first_user))
    pod = config.pod
    scope = config.cache_policy.scope_of(pod.namespace, pod.service_account, config.audience, pod.uid)
    keys = [
        LeaseKey(target.address, target.namespace, auth_mount, config.role, identity, scope, request)
        for request in plan.requests
    ]
    return plan, keys


def _check_volume(
    config: MountConfig, plan: MountPlan, files: list[MountedFile], versions: list[tuple[str, str]]
) -> None:
    """Refuse a volume the pod could not use: no files at all, or a path both file and directory."""
    if not files and all(version != ABSENT_VERSION for _, version in versions):
        # Only format: files can write nothing (a secret without keys); an empty volume is never wanted.
        empty = "; ".join(
            f"{planned.obj.label()} (format: files) found no keys in {planned.sent[0].describe()}"
            for planned in plan.objects
        )
        raise InvalidRequest(f"the volume would be empty: {empty}; add keys to the secret")
    if any(obj.format == "files" for obj in config.objects):
        # Key names come from Vault: they may collide with another object's files.
        clashes = path_conflicts(file.path for file in files)
        if clashes:
            parent, nested = clashes[0]
            raise InvalidRequest(
                f'the secrets\' keys make "{parent}" both a file and a directory ("{nested}")'
            )


def _sensitive(config: MountConfig, pod: PodToken) -> list[str]:
    """Strings that must never appear in a message: the JWT, the Vault token, argument values."""
    return [pod.jwt, pod.token.value, *_argument_values(config.objects)]


def _argument_values(objects: Iterable[SecretObject]) -> list[str]:
    """Every string value in any object's secretArgs (or template arguments), to keep them out of messages."""
    return [value for obj in objects for request in obj.requests for value in request.argument_values()]
