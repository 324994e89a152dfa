"""The provider composed in this process over a FakeVault, and Mounts called as the driver makes them.

`build_provider` is the real composition point; only its transport factory is the
fake's. Mount requests carry `attributes` built exactly as the driver builds them
(`provider.tools.driver`) and service-account JWTs signed by devkit's issuer, so the
parsing, the pod checks and the login body are the real ones.
"""

from __future__ import annotations

import secrets
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from fake_vault import FakeVault

from devkit import ServiceAccountTokenIssuer
from provider.request.mount_request import MountConfig, parse_mount_request
from provider.serve.composition import Provider, build_provider
from provider.serve.health_service import HealthService
from provider.serve.rpc_connection import Limits
from provider.serve.rpc_server import RpcServer
from provider.serve.server import MAX_REQUEST_BYTES, methods_for
from provider.settings import Settings, parse_settings
from provider.tools.driver import PodInfo, build_mount_payload
from provider.v1alpha1 import service_pb2, service_pb2_grpc

__all__ = [
    "ADDRESS",
    "NAMESPACE",
    "POD",
    "Call",
    "composed",
    "config_for",
    "mount_request",
    "serving",
    "settings",
    "spc",
]

ADDRESS = "http://vault.test:8200"
NAMESPACE = "team-a"
POD = PodInfo(NAMESPACE, "app-0", "0d9c1e5a-4f6b-4c2d-9e8f-1a2b3c4d5e6f", "app")
HMAC_KEY = secrets.token_bytes(32)
ISSUER = ServiceAccountTokenIssuer()


def spc(objects: str, role: str = "app", **parameters: str) -> dict[str, str]:
    """SecretProviderClass parameters; `objects` is the YAML block string of the manifest."""
    return {"roleName": role, "objects": textwrap.dedent(objects).strip() + "\n", **parameters}


def settings(*flags: str) -> Settings:
    return parse_settings([f"-vault-addr={ADDRESS}", "-health-addr=", *flags], environ={})


@contextmanager
def composed(fake: FakeVault, *flags: str, token_requester: Any = None) -> Iterator[Provider]:
    """The provider's long-lived objects, built from these flags over `fake`."""
    provider = build_provider(settings(*flags), HMAC_KEY, token_requester, fake.transports)
    try:
        yield provider
    finally:
        provider.close()


def mount_request(parameters: dict[str, str], pod: PodInfo = POD, jwt: str | None = None) -> Any:
    """A MountRequest as driver 1.6 sends it, with a fresh JWT for `pod` unless one is given."""
    token = ISSUER.mint(pod.namespace, pod.service_account, pod.name, pod.uid) if jwt is None else jwt
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 600))
    tokens = {"vault": (token, expires)} if token else None
    attributes, secret_json = build_mount_payload(parameters, spc_name="app-secrets", pod=pod, tokens=tokens)
    return service_pb2.MountRequest(
        attributes=attributes,
        secrets=secret_json,
        target_path="/var/lib/kubelet/pods/x/mount",
        permission="420",
    )


def config_for(request: Any, token_optional: bool = False) -> MountConfig:
    return parse_mount_request(
        request.attributes, request.secrets, request.target_path, request.permission, token_optional
    )


@dataclass(frozen=True)
class Call:
    """How one Mount RPC ended, as the driver sees it."""

    response: Any
    code: grpc.StatusCode
    details: str


@contextmanager
def serving(provider: Provider) -> Iterator[Callable[[Any], Call]]:
    """The servicer on our gRPC server in this process, on a unix socket; yields `mount(request) -> Call`.

    The provider's own server, asked by grpcio's client: its status reaches the caller
    only after the handler has finished (log line, metrics, audit record included).
    """
    with tempfile.TemporaryDirectory(prefix="inprocess-") as directory:
        limits = Limits(max_receive_bytes=MAX_REQUEST_BYTES, max_send_bytes=16 * 1024 * 1024)
        server = RpcServer(methods_for(provider.servicer, HealthService()), workers=4, limits=limits)
        server.listen(f"{directory}/vault.sock")
        server.start()
        channel = grpc.insecure_channel(f"unix://{directory}/vault.sock")
        stub = service_pb2_grpc.CSIDriverProviderStub(channel)  # type: ignore[no-untyped-call]

        def mount(request: Any, timeout: float = 10.0) -> Call:
            try:
                return Call(stub.Mount(request, timeout=timeout), grpc.StatusCode.OK, "")
            except grpc.RpcError as exc:
                return Call(None, exc.code(), exc.details())

        try:
            yield mount
        finally:
            channel.close()
            server.stop(None)
