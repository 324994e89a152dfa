"""Run one Mount through both driver clients into twin directories and hold them to the same result.

`TwinMounts.mount` builds the request once (one token, one `attributes` string), sends it
through the driver's Go client into `<root>/go/<volume>` and through our Python client
into `<root>/python/<volume>`, and asserts that both report the same thing (versions, or
error reason, status code and message) and wrote byte-identical trees. Dynamic secrets
(PKI, database) differ on every Mount, so with `shared_response=True` the Go client's
Mount is relayed to the provider and the Python client gets the very same response.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from driver_clients import GoDriverClient, MountCall, Outcome, PythonDriverClient
from harness import ProviderProcess
from stub_provider import StubProvider
from volume_trees import VolumeTree, read_tree

__all__ = ["NAMESPACE", "SERVICE_ACCOUNT", "Twin", "TwinMounts", "assert_conformant"]

NAMESPACE = "team-a"
SERVICE_ACCOUNT = "app"
DEFAULT_VOLUME = "secrets-store"


@dataclass(frozen=True)
class Twin:
    """The outcome of one Mount through each client, and the volume each one left behind."""

    go: Outcome
    python: Outcome
    go_target: Path
    python_target: Path

    @property
    def tree(self) -> VolumeTree:
        """The (common) volume tree; the Go client's, which assert_conformant compared."""
        return read_tree(self.go_target)

    @property
    def versions(self) -> dict[str, str]:
        return self.go.versions

    @property
    def targets(self) -> tuple[Path, Path]:
        return self.go_target, self.python_target


def assert_conformant(twin: Twin) -> None:
    """Both clients agree on the outcome and wrote byte-identical volumes."""
    go, python = twin.go, twin.python
    assert (go.ok, go.error_code, go.grpc_code) == (python.ok, python.error_code, python.grpc_code), (
        go,
        python,
    )
    # The Go error wraps the status ("rpc error: code = ... desc = <message>"); the
    # provider's message itself must come through unchanged in both.
    assert python.error in go.error, (go.error, python.error)
    assert go.versions == python.versions
    assert go.runtime_version == python.runtime_version
    assert read_tree(twin.go_target) == read_tree(twin.python_target)


class TwinMounts:
    """Mounts for pods of team-a through both clients; see the module docstring."""

    def __init__(
        self,
        provider: ProviderProcess,
        go_client: GoDriverClient,
        python_client: PythonDriverClient,
        stub: StubProvider,
        root: Path,
    ) -> None:
        self.provider = provider
        self.go_client = go_client
        self.python_client = python_client
        self.stub = stub
        self.root = root

    def targets(self, volume: str = DEFAULT_VOLUME) -> tuple[Path, Path]:
        """The Go client's and the Python client's directory for `volume`."""
        return self.root / "go" / volume, self.root / "python" / volume

    def mount(
        self,
        parameters: Mapping[str, str],
        *,
        volume: str = DEFAULT_VOLUME,
        namespace: str = NAMESPACE,
        service_account: str = SERVICE_ACCOUNT,
        pod_name: str = "app-0",
        audience: str | None = "vault",
        token: str | None = None,
        spc_name: str = "app-secrets",
        old_versions: Mapping[str, str] | None = None,
        shared_response: bool = False,
        compare: bool = True,
    ) -> Twin:
        """One Mount through both clients; asserts they conform (unless `compare` is False)."""
        attributes, secrets = self.provider.payload(
            parameters,
            namespace=namespace,
            service_account=service_account,
            pod_name=pod_name,
            audience=audience,
            token=token,
            spc_name=spc_name,
        )
        go_target, python_target = self.targets(volume)
        go_call = MountCall(attributes, secrets, go_target, old_versions=dict(old_versions or {}))
        python_call = MountCall(attributes, secrets, python_target, old_versions=dict(old_versions or {}))
        if shared_response:
            self.stub.relay_to(self.provider.socket_path)
            go = self.go_client.mount(self.stub.directory, go_call)
            assert go.ok, f"the relayed Mount failed, nothing to replay: {go}"
            self.stub.replay()
            python = self.python_client.mount(self.stub.directory, python_call)
        else:
            socket_dir = self.provider.socket_path.parent
            go = self.go_client.mount(socket_dir, go_call)
            python = self.python_client.mount(socket_dir, python_call)
        twin = Twin(go=go, python=python, go_target=go_target, python_target=python_target)
        if compare:
            assert_conformant(twin)
        # Secret values for the integration suite's check that none reaches the provider's log.
        self.provider.contents.extend(twin.tree.files.values())
        return twin
