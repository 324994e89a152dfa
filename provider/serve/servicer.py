"""The gRPC face: Version and Mount, and the one table from errors to status codes.

Nothing below this module knows about gRPC or protobuf. Each Mount logs exactly
one line (pod, SecretProviderClass, object count, duration, code) and never the
request's attributes, secrets, tokens or contents.
"""

from __future__ import annotations

import logging
import threading
import time

from provider import PROVIDER_NAME, __version__
from provider.errors import (
    Cancelled,
    DeadlineExceeded,
    InvalidRequest,
    KubernetesUnavailable,
    PermissionDenied,
    ProviderError,
    ResponseTooLarge,
    SecretNotFound,
    VaultRejected,
    VaultUnavailable,
)
from provider.mount.mounter import Mounter, MountResult
from provider.mount.per_volume import PerVolume
from provider.request.mount_request import (
    DEFAULT_AUDIENCE,
    MountConfig,
    PodIdentity,
    identify,
    parse_mount_request,
)
from provider.serve.audit import AuditSink
from provider.serve.logs import where_raised
from provider.serve.messages import (
    File,
    MountRequest,
    MountResponse,
    ObjectVersion,
    VersionRequest,
    VersionResponse,
)
from provider.serve.metrics import Metrics
from provider.serve.parameter_warnings import UnknownParameterWarnings
from provider.serve.rpc_status import CallContext, StatusCode
from provider.vault.deadline import Deadline

__all__ = ["API_VERSION", "CODES", "ProviderServicer", "status_for"]

API_VERSION = "v1alpha1"
# A Kubernetes Secret holds at most 1 MiB; the driver warns above that too.
SECRET_SYNC_LIMIT_BYTES = 1024 * 1024

CODES: dict[type[ProviderError], StatusCode] = {
    InvalidRequest: StatusCode.INVALID_ARGUMENT,
    PermissionDenied: StatusCode.PERMISSION_DENIED,
    SecretNotFound: StatusCode.NOT_FOUND,
    VaultRejected: StatusCode.FAILED_PRECONDITION,
    VaultUnavailable: StatusCode.UNAVAILABLE,
    KubernetesUnavailable: StatusCode.UNAVAILABLE,
    ResponseTooLarge: StatusCode.RESOURCE_EXHAUSTED,
    DeadlineExceeded: StatusCode.DEADLINE_EXCEEDED,
    Cancelled: StatusCode.CANCELLED,
}

log = logging.getLogger("provider.mount")


def status_for(error: ProviderError) -> StatusCode:
    for cls in type(error).__mro__:
        if cls in CODES:
            return CODES[cls]
    return StatusCode.INTERNAL


class ProviderServicer:
    """The v1alpha1.CSIDriverProvider methods, served by `rpc_server`."""

    def __init__(
        self,
        mounter: Mounter,
        metrics: Metrics,
        audit: AuditSink | None,
        *,
        max_concurrent_mounts: int,
        max_response_bytes: int,
        max_file_bytes: int,
        default_audience: str = DEFAULT_AUDIENCE,
    ) -> None:
        self._audit = audit
        self._default_audience = default_audience
        self._max_file_bytes = max_file_bytes
        self._mounter = mounter
        self._metrics = metrics
        self._max_response_bytes = max_response_bytes
        self._slots = threading.BoundedSemaphore(max_concurrent_mounts)
        self._parameter_warnings = UnknownParameterWarnings()
        # Each volume's last answer, encoded: a poll whose rendering is the one kept by the
        # Mounter (the same files and versions) sends the same bytes, so they are built once.
        # Held in memory only, like the renderings they encode.
        self._answers: PerVolume[MountResponse] = PerVolume()

    def Version(self, request: VersionRequest, context: CallContext) -> VersionResponse:
        return VersionResponse(version=API_VERSION, runtime_name=PROVIDER_NAME, runtime_version=__version__)

    def Mount(self, request: MountRequest, context: CallContext) -> MountResponse:
        started = time.monotonic()
        deadline = Deadline(context.time_remaining())
        context.add_callback(deadline.cancel)
        config: MountConfig | None = None
        result: MountResult | None = None
        code = StatusCode.OK
        self._metrics.mounts_in_flight.inc()
        try:
            config = parse_mount_request(
                request.attributes,
                request.secrets,
                request.target_path,
                request.permission,
                token_optional=self._mounter.requests_tokens,
                default_audience=self._default_audience,
            )
            self._parameter_warnings.check(config.pod.namespace, config.spc_name, config.unknown_parameters)
            with self._slot(deadline):
                result = mounted = self._mounter.mount(config, deadline)
            answered = (mounted.files, mounted.versions)
            response = self._answers.get(config, answered, lambda: _response(mounted))
            self._check_size(response, config.pod.describe())
            return response
        except ProviderError as exc:
            code = status_for(exc)
            context.abort(code, str(exc))
        except Exception as exc:
            # A bug of ours: keep serving. Log where it happened but not the exception's
            # text, which could quote request data.
            code = StatusCode.INTERNAL
            log.error("unexpected %s in Mount\n%s", type(exc).__name__, where_raised(exc))
            context.abort(code, "internal error in the Vault provider; see the provider's log")
        finally:
            self._metrics.mounts_in_flight.dec()
            self._done(request, config, result, code, time.monotonic() - started)
        raise AssertionError("unreachable: context.abort raises")

    def _done(
        self,
        request: MountRequest,
        config: MountConfig | None,
        result: MountResult | None,
        code: StatusCode,
        seconds: float,
    ) -> None:
        """The Mount's one log line, its metrics and its audit record."""
        objects = len(config.objects) if config else 0
        # A rejected request still gets its line, with the names it carried.
        if config:
            namespace, pod, spc = config.pod.namespace, config.pod.name, config.spc_name
        else:
            namespace, pod, spc = identify(request.attributes)
        self._metrics.mount_done(code.name, seconds, namespace, spc)
        log.info(
            "mount pod=%s/%s spc=%s objects=%d duration_ms=%.1f code=%s",
            namespace,
            pod,
            spc,
            objects,
            seconds * 1000,
            code.name,
            extra={"pod": f"{namespace}/{pod}", "spc": spc, "objects": objects, "code": code.name},
        )
        if self._audit is not None:
            self._audit.record(
                config.pod if config else PodIdentity(namespace, pod, "unknown", "unknown"),
                spc,
                code.name,
                seconds,
                result.records if result and code == StatusCode.OK else None,
                config.objects if config else (),
            )

    def _slot(self, deadline: Deadline) -> _Slot:
        return _Slot(self._slots, deadline)

    def _check_size(self, response: MountResponse, pod: str) -> None:
        """Refuse answers the driver cannot take; warn about ones a synced Secret cannot hold."""
        for file in response.files:
            if len(file.contents) > self._max_file_bytes:
                raise ResponseTooLarge(
                    f"file {file.path!r} would hold {len(file.contents)} bytes, over this provider's "
                    f"{self._max_file_bytes}-byte limit per file (-max-file-bytes)"
                )
        size = response.size
        if size > SECRET_SYNC_LIMIT_BYTES:
            log.warning(
                "the volume of pod %s holds %d bytes: syncing it to a Kubernetes Secret (1 MiB) may fail",
                pod,
                size,
            )
        if size > self._max_response_bytes:
            biggest = max(response.files, key=lambda f: len(f.contents))
            raise ResponseTooLarge(
                f"the volume would hold {size} bytes, over the driver's {self._max_response_bytes}-byte "
                f"receive limit (largest file: {biggest.path!r}, {len(biggest.contents)} bytes); "
                "select single keys with secretKey or raise the driver's --max-call-recv-msg-size"
            )


class _Slot:
    """A concurrency slot, waited for no longer than the Mount's deadline."""

    def __init__(self, semaphore: threading.BoundedSemaphore, deadline: Deadline) -> None:
        self._semaphore = semaphore
        self._deadline = deadline

    def __enter__(self) -> None:
        if not self._semaphore.acquire(timeout=self._deadline.remaining()):
            raise DeadlineExceeded("the provider was busy with other Mounts until the deadline passed")

    def __exit__(self, *exc: object) -> None:
        self._semaphore.release()


def _response(result: MountResult) -> MountResponse:
    return MountResponse(
        files=tuple(File(f.path, f.mode, f.contents) for f in result.files),
        object_version=tuple(ObjectVersion(i, v) for i, v in result.versions),
    )
