"""`vault-csi-provider mount`: play the driver for one SecretProviderClass and pod.

Builds `attributes` and `secrets` as the driver does, calls Mount over the
provider's socket, checks the answer as the driver does and writes the files
with the driver's atomic layout. Prints the object versions (never contents).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from provider.tools.driver.attributes import PodInfo, build_mount_payload
from provider.tools.driver.client import ProviderCallError, ProviderClient
from provider.tools.driver.manifests import (
    OUR_PROVIDERS,
    InvalidSecretProviderClass,
    SecretProviderClass,
    load_secret_provider_classes,
)
from provider.tools.driver.paths import InvalidPayloadPath

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vault-csi-provider mount",
        description="Mount a SecretProviderClass through a running provider, as the CSI driver would.",
    )
    parser.add_argument("--socket", default="/provider/vault.sock", help="the provider's unix socket")
    parser.add_argument("--spc", required=True, help="SecretProviderClass YAML file")
    parser.add_argument("--spc-name", help="which SecretProviderClass of the file (default: the only one)")
    parser.add_argument("--pod-namespace", default="default")
    parser.add_argument("--pod-name", default="example-pod")
    parser.add_argument("--pod-uid", default="", help="default: a UUID derived from namespace and name")
    parser.add_argument("--service-account", default="default")
    token = parser.add_mutually_exclusive_group(required=True)
    token.add_argument("--token-file", help="file holding the pod's service-account JWT")
    token.add_argument("--token", help="the JWT itself (prefer --token-file: arguments are visible in ps)")
    parser.add_argument("--audience", default="vault", help="the audience the token was issued for")
    parser.add_argument("--target", required=True, help="directory to write the volume into")
    parser.add_argument(
        "--permission", default="420", help='default file mode as the driver sends it ("420")'
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds, like kubelet's deadline")
    return parser


def _pick(classes: list[SecretProviderClass], name: str | None) -> SecretProviderClass:
    candidates = [
        spc for spc in classes if spc.provider in OUR_PROVIDERS and (name is None or spc.name == name)
    ]
    if len(candidates) != 1:
        names = ", ".join(spc.name for spc in classes) or "none"
        wanted = f"a vault SecretProviderClass named {name}" if name else "one vault SecretProviderClass"
        wanted += " (provider: vault or openbao)"
        raise InvalidSecretProviderClass(f"expected {wanted}; found: {names}")
    return candidates[0]


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        spc = _pick(load_secret_provider_classes(args.spc), args.spc_name)
        token = Path(args.token_file).read_text().strip() if args.token_file else args.token
    except (InvalidSecretProviderClass, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    uid = args.pod_uid or str(uuid.uuid5(uuid.NAMESPACE_URL, f"pod/{args.pod_namespace}/{args.pod_name}"))
    pod = PodInfo(args.pod_namespace, args.pod_name, uid, args.service_account)
    expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    attributes, secrets = build_mount_payload(
        spc.parameters, spc_name=spc.name, pod=pod, tokens={args.audience: (token, expires)}
    )
    Path(args.target).mkdir(parents=True, exist_ok=True)
    try:
        with ProviderClient(args.socket, timeout_seconds=args.timeout) as client:
            result = client.mount_into(args.target, attributes, secrets, permission=args.permission)
    except ProviderCallError as exc:
        print(f"mount failed: {exc.code.name}: {exc.message}", file=sys.stderr)
        return 1
    except InvalidPayloadPath as exc:
        print(f"the driver would refuse this answer: {exc}", file=sys.stderr)
        return 1
    summary = {
        "target": str(Path(args.target).resolve()),
        "changed": result.changed,
        "files": [{"path": f.path, "mode": oct(f.mode), "bytes": len(f.contents)} for f in result.files],
        "versions": result.versions,
    }
    print(json.dumps(summary, indent=2))
    return 0
