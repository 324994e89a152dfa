"""Optional (`--kube-kit`): a Kubernetes API for the provider's own calls, as inside a pod.

HashiCorp's provider reads its HMAC key from a Kubernetes Secret through in-cluster
configuration, and refuses to start without one: `KUBERNETES_SERVICE_HOST`/`_PORT`, an
HTTPS API server, and the pod's token, CA and namespace in
/var/run/secrets/kubernetes.io/serviceaccount/. This kit serves exactly that: a second
apiserver stand-in over HTTPS (its own CA) holding the HMAC key Secret, and a directory
with `token`, `ca.crt` and `namespace` to put where the provider looks (see the README).
It also counts the provider's calls to it, so the table can show Kubernetes API calls per Mount.
With `--network-rtt-ms` each call is answered that much later, as from an apiserver across
the network (HashiCorp's provider GETs its HMAC Secret on every Mount).
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devkit import CertificateAuthority, FakeApiServer, KeyPair, ServiceAccountTokenIssuer, write_pem
from devkit.http_stub import StubResponse

__all__ = ["HMAC_SECRET_NAME", "NAMESPACE", "KubeKit", "start_kube_kit"]

NAMESPACE = "csi"
SERVICE_ACCOUNT = "vault-csi-provider"
HMAC_SECRET_NAME = "vault-csi-provider-hmac-key"  # noqa: S105 - a Secret's name
_TOKEN_SECONDS = 24 * 3600


@dataclass
class KubeKit:
    """The HTTPS apiserver (`host`, `port`) and the service-account directory for the provider."""

    server: FakeApiServer
    sa_dir: Path
    host: str
    port: str

    def api_calls(self) -> int:
        return len(self.server.api_calls)


class _DistantApiServer(FakeApiServer):
    """Answers each call `delay` seconds after it arrived (a sleep on the call's own thread)."""

    def __init__(self, issuer: ServiceAccountTokenIssuer, tls: KeyPair, delay: float) -> None:
        super().__init__(issuer, tls=tls)
        self.delay = delay

    def dispatch(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> StubResponse:
        if self.delay:
            time.sleep(self.delay)
        return super().dispatch(method, target, headers, body)


def start_kube_kit(
    stack: contextlib.ExitStack, issuer: ServiceAccountTokenIssuer, scratch: Path, delay: float = 0.0
) -> KubeKit:
    ca = CertificateAuthority.create("bench kube-apiserver CA")
    pair = ca.issue_server(["kubernetes.default.svc", "localhost"], ["127.0.0.1"])
    server = stack.enter_context(_DistantApiServer(issuer, pair, delay))
    server.put_secret(NAMESPACE, HMAC_SECRET_NAME, {"key": secrets.token_bytes(32)})
    sa_dir = scratch / "serviceaccount"
    sa_dir.mkdir(mode=0o755)
    token = issuer.mint(
        NAMESPACE,
        SERVICE_ACCOUNT,
        f"{SERVICE_ACCOUNT}-0",
        "00000000-0000-4000-8000-000000000001",
        audiences=[issuer.issuer],
        ttl_seconds=_TOKEN_SECONDS,
    )
    (sa_dir / "token").write_text(token, encoding="ascii")
    write_pem(sa_dir / "ca.crt", ca.cert_pem)
    (sa_dir / "namespace").write_text(NAMESPACE, encoding="ascii")
    host, _, port = server.url.removeprefix("https://").partition(":")
    return KubeKit(server=server, sa_dir=sa_dir, host=host, port=port)
