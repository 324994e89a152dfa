"""`make demo` (`python -m devkit.demo`): the whole path on one machine, nothing to install but the checkout.

Starts an OpenBao dev server and a stand-in for the kube-apiserver's TokenReview,
configures Kubernetes auth, a role, a policy and a secret, runs the provider as its
own process on a unix socket, mounts a SecretProviderClass the way the CSI driver
does, then changes the secret and mounts again to show a rotation. The secret
values here are made up for the demo, so it prints them.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path

from devkit import vault_setup
from devkit.apiserver import FakeApiServer
from devkit.errors import DevkitError
from devkit.openbao import OpenBaoServer
from devkit.procs import stop_process
from devkit.sa_tokens import ServiceAccountTokenIssuer
from provider.tools.driver import PodInfo, ProviderCallError, ProviderClient, build_mount_payload
from provider.tools.driver.manifests import SecretProviderClass, parse_secret_provider_classes

__all__ = ["main"]

NAMESPACE = "demo"
SERVICE_ACCOUNT = "webapp"
POD = PodInfo(NAMESPACE, "webapp-7d4b9", "2f1e7a52-0c3e-4d6f-9a51-3b7c1d2e4f60", SERVICE_ACCOUNT)
POLICY = 'path "secret/data/webapp/*" { capabilities = ["read"] }'
SPC_YAML = """\
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: webapp-secrets
  namespace: demo
spec:
  provider: vault
  parameters:
    roleName: webapp
    vaultAddress: {address}
    objects: |
      - objectName: db-username
        secretPath: secret/data/webapp/db
        secretKey: username
      - objectName: db-password
        secretPath: secret/data/webapp/db
        secretKey: password
        filePermission: 0o600
      - objectName: config/feature-flags.json
        secretPath: secret/data/webapp/config
        secretKey: flags
      - objectName: config/db.env
        template: |
          {{{{- with secret "secret/data/webapp/db" -}}}}
          DB_USER={{{{ .Data.data.username }}}}
          DB_PASSWORD={{{{ .Data.data.password }}}}
          {{{{- end }}}}
"""


def _say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def _show_volume(target: Path, versions: dict[str, str]) -> None:
    data = target / "..data"
    for path in sorted(p for p in data.rglob("*") if p.is_file()):
        relative = path.relative_to(data)
        mode = oct(path.stat().st_mode & 0o777)
        print(f"    {relative}  ({mode})  version {versions.get(str(relative), '?')[:16]}...")
        print(textwrap.indent(path.read_text(), "        "))


def _wait_for_socket(path: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise DevkitError(f"the provider did not start; its log:\n{log.read_text()}")
        time.sleep(0.05)


def _mount(socket: Path, spc: SecretProviderClass, pod: PodInfo, token: str, target: Path) -> dict[str, str]:
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 600))
    attributes, secret_json = build_mount_payload(
        spc.parameters, spc_name=spc.name, pod=pod, tokens={"vault": (token, expires)}
    )
    with ProviderClient(str(socket), timeout_seconds=30) as client:
        result = client.mount_into(str(target), attributes, secret_json)
    print(f"    mounted {len(result.files)} files into {target} (changed: {result.changed})")
    return result.versions


def run_demo(target: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="vault-csi-demo-") as work:
        _run_in(Path(work), target)


def _run_in(work: Path, target: Path) -> None:
    issuer = ServiceAccountTokenIssuer()
    _say("starting an OpenBao dev server and a TokenReview stand-in for the kube-apiserver")
    with OpenBaoServer() as bao, FakeApiServer(issuer) as apiserver:
        print(f"    OpenBao at {bao.address}, apiserver stand-in at {apiserver.url}")
        root = bao.client()
        _say("configuring Kubernetes auth, the webapp role and policy, and two KV v2 secrets")
        vault_setup.enable_kubernetes_auth(root, "kubernetes", apiserver.url)
        vault_setup.write_policy(root, "webapp", POLICY)
        vault_setup.kubernetes_role(root, "kubernetes", "webapp", [SERVICE_ACCOUNT], [NAMESPACE], ["webapp"])
        vault_setup.put_kv(root, "secret", "webapp/db", {"username": "webapp", "password": "correct-horse-1"})
        vault_setup.put_kv(root, "secret", "webapp/config", {"flags": {"beta": True, "max_items": 25}})

        _say("starting the provider on a unix socket")
        socket = work / "vault.sock"
        key_file = work / "hmac.key"
        key_file.write_bytes(secrets.token_bytes(32))
        log = work / "provider.log"
        command = [
            sys.executable, "-m", "provider",
            f"-endpoint={socket}", f"-vault-addr={bao.address}", f"-hmac-key-file={key_file}",
            # Loopback only, on a port of the kernel's choosing: the demo must not need :8080 free.
            "-health-addr=127.0.0.1:0",
        ]  # fmt: skip
        print("    " + " ".join(command[1:]))
        with log.open("wb") as log_file:
            provider = subprocess.Popen(command, stderr=log_file, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            _wait_for_socket(socket, provider, log)
            spc = parse_secret_provider_classes(SPC_YAML.format(address=bao.address))[0]
            token = issuer.mint(NAMESPACE, SERVICE_ACCOUNT, POD.name, POD.uid)

            _say(f"the SecretProviderClass\n{textwrap.indent(SPC_YAML.format(address=bao.address), '    ')}")
            _say("mounting it as the CSI driver would, for pod demo/webapp-7d4b9")
            first = _mount(socket, spc, POD, token, target)
            _show_volume(target, first)

            _say("rotating the database password in Vault")
            vault_setup.put_kv(
                root, "secret", "webapp/db", {"username": "webapp", "password": "battery-staple-2"}
            )
            _say("the driver's next rotation poll calls Mount again")
            second = _mount(socket, spc, POD, token, target)
            _show_volume(target, second)
            for name in sorted(second):
                state = "changed" if first[name] != second[name] else "unchanged"
                print(f"    version of {name}: {state}")

            _say("a pod whose service account is not bound to the role is refused")
            intruder = PodInfo(NAMESPACE, "intruder-0", "9c0d8e1f-5a6b-4c7d-8e9f-0a1b2c3d4e5f", "intruder")
            intruder_token = issuer.mint(NAMESPACE, intruder.service_account, intruder.name, intruder.uid)
            try:
                _mount(socket, spc, intruder, intruder_token, work / "intruder-volume")
            except ProviderCallError as exc:
                print(f"    {exc.code.name}: {exc.message}")
        finally:
            stop_process(provider)
            print(f"\n    provider exited with {provider.returncode}; its log:")
            print(textwrap.indent(log.read_text().rstrip(), "    "))


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--target", default="demo-volume", help="directory to mount into (default ./demo-volume)"
    )
    args = parser.parse_args(argv)
    try:
        run_demo(Path(args.target))
    except (DevkitError, ProviderCallError, OSError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    print(f"\ndone: the volume is in {Path(args.target).resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
