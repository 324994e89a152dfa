"""`python -m bench.vault_clients`: the provider's Vault client against hvac, CPU per request and import cost.

The question it answers: should the product speak Vault's API through hvac (which the
design card names) instead of its own client? And what does our own HTTP/1.1 transport save
over the urllib3 one it replaced? A small Vault stand-in runs in
a child process (so its CPU is not the client's) and answers every GET with the same
KV v2 secret over keep-alive HTTP/1.1. Each client reads it `--requests` times in one
thread; the figure is this process's CPU (user+system) per request, and the wall time.

    ours             provider.vault.client.VaultClient over its HTTP/1.1 transport (production)
    ours+urllib3     the same client over a urllib3 pool (the transport before lean-http, kept
                     here, happy path only, as the comparison)
    hvac             hvac.Client, its default JSONAdapter (requests.Session)
    hvac+urllib3     hvac.Client with an Adapter of our own over a urllib3 pool: hvac's seam,
                     without requests, the fastest way hvac can be carried here

Then, in fresh interpreters, the RSS and import time each one adds on top of what the
provider already imports (grpc, yaml; urllib3 too, for the rows that need it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import hvac
import hvac.adapters
import urllib3

from provider.request.vault_request import VaultRequest
from provider.vault.client import VaultClient
from provider.vault.deadline import Deadline
from provider.vault.request_counts import Uncounted
from provider.vault.retry import RetryPolicy
from provider.vault.target import VaultTarget
from provider.vault.transport import HttpRequest, HttpResponse, Transport, http11_transports

__all__ = ["main"]

_TOKEN = "hvs.bench-token"  # noqa: S105 - the stand-in accepts anything
_STAND_IN = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
BODY = json.dumps({"request_id": "r", "lease_id": "", "renewable": False, "lease_duration": 0,
    "data": {"data": {"username": "app", "password": "s3cr3t-" + "x" * 40},
             "metadata": {"created_time": "2026-12-02T10:00:00Z", "version": 3}},
    "wrap_info": None, "warnings": None, "auth": None}).encode()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 65536  # one write per answer (flushed after each request): no Nagle/delayed-ACK stall
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
    def log_message(self, *args):
        pass
server = ThreadingHTTPServer(("127.0.0.1", 0), H)
print(server.server_address[1], flush=True)
server.serve_forever()
"""

_IMPORT_BASE = "import grpc, yaml"
_IMPORTS = {
    "ours": "import provider.vault.client, provider.vault.transport",
    "urllib3": "import urllib3",
    "hvac": "import hvac",
}


class Urllib3Transport:
    """The Transport seam over a urllib3 pool, as the provider had it before lean-http (no error mapping)."""

    def __init__(self, target: VaultTarget) -> None:
        self._pool = urllib3.connection_from_url(target.address, maxsize=4)

    def send(self, request: HttpRequest, timeout: float) -> HttpResponse:
        response = self._pool.urlopen(
            request.method,
            request.path,
            body=request.body,
            headers=dict(request.headers),
            retries=False,
            redirect=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            preload_content=False,
        )
        try:
            body = b"".join(iter(lambda: response.read1(64 * 1024), b""))
        finally:
            response.release_conn()
        return HttpResponse(response.status, response.headers, body)

    def close(self) -> None:
        self._pool.close()


class Urllib3Adapter(hvac.adapters.Adapter):  # type: ignore[misc]
    """hvac's Adapter seam carried by a urllib3 pool; 2xx JSON answers come back as dicts."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._http = urllib3.PoolManager(maxsize=4)

    def get_login_token(self, response: Any) -> str:
        return str(response["auth"]["client_token"])

    def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None = None,
        raise_exception: bool = True,
        **kwargs: Any,
    ) -> Any:
        full = self.urljoin(self.base_uri, url)
        sent = {"X-Vault-Token": self.token or "", "X-Vault-Request": "true", **(headers or {})}
        body = json.dumps(kwargs["json"]).encode() if kwargs.get("json") is not None else None
        answer = self._http.request(
            method.upper(), full, body=body, headers=sent, timeout=self._kwargs["timeout"]
        )
        if answer.status >= 400 and raise_exception:
            raise hvac.exceptions.VaultError(f"{method} {url}: {answer.status}")
        return json.loads(answer.data) if answer.data else None


def _ours(address: str, transports: Callable[[VaultTarget], Transport]) -> Callable[[], object]:
    client = VaultClient(transports, Uncounted(), RetryPolicy())
    target = VaultTarget(address=address, address_source="flag")
    request = VaultRequest("GET", "/v1/secret/data/app")
    return lambda: client.send(target, request, Deadline(10.0), _TOKEN)


def _hvac(address: str, adapter: type[hvac.adapters.Adapter] | None) -> Callable[[], object]:
    kwargs = {"adapter": adapter} if adapter is not None else {}
    client = hvac.Client(url=address, token=_TOKEN, **kwargs)
    return lambda: client.secrets.kv.v2.read_secret_version(
        path="app", mount_point="secret", raise_on_deleted_version=True
    )


def _cpu_per_request(read: Callable[[], object], count: int) -> tuple[float, float]:
    for _ in range(50):
        read()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        read()
    return (time.process_time() - cpu) / count * 1e6, (time.perf_counter() - wall) / count * 1e6


def _import_cost(statement: str) -> tuple[float, float]:
    """(RSS MiB, import ms) that `statement` adds on top of `_IMPORT_BASE`, in a fresh interpreter."""
    probe = (
        f"{_IMPORT_BASE}\nimport re, time\n"
        "rss = lambda: int(re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
        f"before, start = rss(), time.perf_counter()\n{statement}\n"
        "print(rss() - before, (time.perf_counter() - start) * 1000)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    kib, millis = out.split()
    return int(kib) / 1024, float(millis)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.vault_clients", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args(argv)
    server = subprocess.Popen([sys.executable, "-c", _STAND_IN], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        address = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        clients = {
            "ours": _ours(address, http11_transports(pool_size=4)),
            "ours+urllib3": _ours(address, Urllib3Transport),
            "hvac": _hvac(address, None),
            "hvac+urllib3": _hvac(address, Urllib3Adapter),
        }
        print(f"{'client':<14} {'CPU us/request':>15} {'wall us/request':>16}")
        for _round in range(2):  # twice, in turn: the second round shows the noise
            for name, read in clients.items():
                cpu, wall = _cpu_per_request(read, args.requests)
                print(f"{name:<14} {cpu:>15.0f} {wall:>16.0f}")
    finally:
        server.terminate()
        server.wait()
    print(f"\nimport cost on top of `{_IMPORT_BASE}` (fresh interpreter)")
    for name, statement in _IMPORTS.items():
        rss, millis = _import_cost(statement)
        print(f"{name:<14} +{rss:.1f} MiB RSS, {millis:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
