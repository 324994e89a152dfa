"""The two driver-side clients the conformance suite mounts through, behind one interface.

`GoDriverClient` runs `driverclient/` — the Secrets Store CSI driver's own
`NewPluginClientBuilder`, `Version` and `MountContent`, files written by its atomic
writer. `PythonDriverClient` is our `provider.driver` doing the same. Both take a
`MountCall` and report an `Outcome` in the Go program's terms, so a scenario can run
through both and compare what they report and what they wrote.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from provider.tools.driver import DEFAULT_PERMISSION, InvalidPayloadPath, ProviderCallError, ProviderClient

__all__ = [
    "FILE_WRITE_ERROR",
    "GRPC_PROVIDER_ERROR",
    "PROVIDER_NAME",
    "DriverClient",
    "GoDriverClient",
    "MountCall",
    "Outcome",
    "PythonDriverClient",
]

PROVIDER_NAME = "vault"
# The driver's internal error reasons (pkg/errors) that MountContent returns.
GRPC_PROVIDER_ERROR = "GRPCProviderError"
FILE_WRITE_ERROR = "FileWriteError"
_CALL_TIMEOUT_SECONDS = 30.0
# Exit statuses of driverclient: 0 mounted, 1 the mount failed, 2 it could not run.
_EXIT_MOUNTED, _EXIT_FAILED = 0, 1


@dataclass(frozen=True)
class MountCall:
    """One Mount as the driver's node server makes it: the request strings and the volume directory."""

    attributes: str
    secrets: str
    target: Path
    permission: str = DEFAULT_PERMISSION
    #: What drivers up to 1.5 sent on rotation; the 1.6 node server sends none.
    old_versions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What a client reports: versions, or the driver's error reason, status code and text."""

    versions: dict[str, str]
    error_code: str
    grpc_code: str
    error: str
    runtime_version: str

    @property
    def ok(self) -> bool:
        return not self.error


class DriverClient:
    """A driver-side client that mounts into a directory through the provider in `socket_dir`."""

    name = ""

    def mount(self, socket_dir: Path, call: MountCall) -> Outcome:
        raise NotImplementedError


class GoDriverClient(DriverClient):
    """The driver's own Go client code, run as the `driverclient` binary, one process per Mount."""

    name = "go"

    def __init__(self, binary: Path) -> None:
        self.binary = binary

    def mount(self, socket_dir: Path, call: MountCall) -> Outcome:
        request = {
            "socket_dirs": [str(socket_dir)],
            "provider": PROVIDER_NAME,
            "attributes": call.attributes,
            "secrets": call.secrets,
            "target_path": str(call.target),
            "permission": call.permission,
            "old_object_versions": dict(call.old_versions),
            "timeout_seconds": _CALL_TIMEOUT_SECONDS,
        }
        done = subprocess.run(
            [str(self.binary)],
            input=json.dumps(request).encode(),
            capture_output=True,
            timeout=_CALL_TIMEOUT_SECONDS + 10,
            check=False,
        )
        stderr = done.stderr.decode(errors="replace")
        if done.returncode not in (_EXIT_MOUNTED, _EXIT_FAILED):
            raise AssertionError(f"driverclient could not run (exit {done.returncode}):\n{stderr}")
        report = json.loads(done.stdout)
        outcome = Outcome(
            versions=report["versions"] or {},
            error_code=report["error_code"],
            grpc_code=report["grpc_code"],
            error=report["error"],
            runtime_version=report["runtime_version"],
        )
        # The exit status and the report must agree, or callers relying on either are misled.
        assert outcome.ok == (done.returncode == _EXIT_MOUNTED), (done.returncode, report, stderr)
        return outcome


class PythonDriverClient(DriverClient):
    """Our driver-side client, `provider.driver.ProviderClient`, reporting in the Go program's terms."""

    name = "python"

    def mount(self, socket_dir: Path, call: MountCall) -> Outcome:
        socket_path = socket_dir / f"{PROVIDER_NAME}.sock"
        with ProviderClient(socket_path, timeout_seconds=_CALL_TIMEOUT_SECONDS) as client:
            try:
                runtime_version = client.version()[2]
            except ProviderCallError as exc:
                return _failed(GRPC_PROVIDER_ERROR, exc.code.name, exc.message, "")
            try:
                result = client.mount_into(
                    call.target, call.attributes, call.secrets, call.permission, call.old_versions
                )
            except ProviderCallError as exc:
                # A non-empty `error.code` of the response is the driver's reason as it is.
                reason = exc.provider_code or GRPC_PROVIDER_ERROR
                return _failed(reason, exc.code.name, exc.message, runtime_version)
            except (InvalidPayloadPath, OSError) as exc:
                return _failed(FILE_WRITE_ERROR, "UNKNOWN", str(exc), runtime_version)
        return Outcome(
            versions=result.versions,
            error_code="",
            grpc_code="OK",
            error="",
            runtime_version=runtime_version,
        )


def _failed(error_code: str, grpc_code: str, error: str, runtime_version: str) -> Outcome:
    return Outcome(
        versions={}, error_code=error_code, grpc_code=grpc_code, error=error, runtime_version=runtime_version
    )
