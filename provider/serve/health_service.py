"""The standard grpc.health.v1 Check, on our own gRPC server.

The probes on -health-addr (`health`) ask it over the driver's socket, as would any
gRPC health client. Watch, a stream, is not served: nothing that talks to this socket
uses it.
"""

from __future__ import annotations

import threading

from provider.serve.messages import NOT_SERVING, HealthCheckRequest, HealthCheckResponse
from provider.serve.rpc_status import CallContext, StatusCode

__all__ = ["HealthService"]


class HealthService:
    """Each service's serving status; all NOT_SERVING, for good, once the drain begins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._statuses: dict[str, int] = {}
        self._shutting_down = False

    def set(self, service: str, status: int) -> None:
        with self._lock:
            if not self._shutting_down:
                self._statuses[service] = status

    def enter_graceful_shutdown(self) -> None:
        with self._lock:
            self._shutting_down = True
            for service in self._statuses:
                self._statuses[service] = NOT_SERVING

    def Check(self, request: HealthCheckRequest, context: CallContext) -> HealthCheckResponse:
        with self._lock:
            status = self._statuses.get(request.service)
        if status is None:
            context.abort(StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return HealthCheckResponse(status)
