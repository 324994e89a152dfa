"""`vault-csi-provider lint SPC.yaml ...`: check SecretProviderClass files in CI, no Vault needed.

Each `provider: vault` (or `openbao`) class goes through exactly what a Mount does before it
talks to Vault: the driver's manifest reading, the driver's `attributes` for a
stand-in pod, `parse_mount_request` and `resolve_target`. So the linter
rejects what the Mount path rejects, with the same words, and nothing else.
Beyond that, `lint_sync` checks `secretObjects` against `objects` and warns about
parameters no one reads. With `--vault ADDRESS` a class that passes is also tried
against Vault (`lint_vault`).
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from provider import PROVIDER_NAME
from provider.errors import InvalidRequest
from provider.mount.target_policy import resolve_target
from provider.request.mount_request import DEFAULT_AUDIENCE, MountConfig, parse_mount_request
from provider.request.objects import parse_objects
from provider.settings import parse_settings
from provider.tools.driver.attributes import PodInfo, build_mount_payload
from provider.tools.driver.manifests import (
    KIND,
    OUR_PROVIDERS,
    InvalidSecretProviderClass,
    SecretProviderClass,
    parse_secret_provider_classes,
)
from provider.tools.lint_sync import secret_object_problems, unknown_parameter_warnings
from provider.tools.lint_vault import DryRun, dry_run
from provider.vault.client import VaultClient
from provider.vault.request_counts import Uncounted
from provider.vault.retry import RetryPolicy
from provider.vault.transport import http11_transports

__all__ = ["main"]

OK, PROBLEMS, USAGE = 0, 1, 2
# The stand-in pod: any valid identity will do, and a fixed one keeps runs reproducible.
LINT_POD_UID = str(uuid.UUID(int=0))
LINT_TOKEN = ("lint-token", "2099-01-01T00:00:00Z")
# parse_secret_provider_classes names its input in every message; the linter names it its own way.
_SOURCE = "<lint>"


@dataclass(frozen=True)
class Finding:
    """One output line: a document's problem, its clean bill, or (verbose) why it was skipped."""

    document: int  # 1-based among the file's YAML documents; 0 for the file as a whole
    label: str
    text: str
    problem: bool


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROVIDER_NAME} lint",
        description=(
            "Check SecretProviderClass files with the Mount path's own parsing and validation, "
            "without Vault. Exit code 0: all clean; 1: a problem was found; 2: usage error or "
            "unreadable file. With --vault, each clean class is also tried against Vault: a login "
            "(--jwt-file) or a token (--token-file, else VAULT_TOKEN), its permissions for every "
            "request, and the KV reads; nothing is written and no credential is issued."
        ),
    )
    parser.add_argument("--vault", metavar="ADDRESS", help="Vault address to dry-run against")
    parser.add_argument("--vault-ca-cert", metavar="FILE", default="", help="PEM CA file for --vault")
    parser.add_argument(
        "--token-file", metavar="FILE", help="file holding the Vault token (default: VAULT_TOKEN)"
    )
    parser.add_argument(
        "--jwt-file",
        metavar="FILE",
        help="service-account JWT to log in with as each class's roleName, as its pods would",
    )
    parser.add_argument("files", nargs="+", metavar="SPC.yaml", help="single or multi-document YAML")
    parser.add_argument("-q", "--quiet", action="store_true", help="print problems only, no 'ok' lines")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also list documents skipped (other kinds or providers)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Lint every file; print one line per problem; return the exit code for CI."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        dry = _dry_run_options(args, os.environ)
    except ValueError as exc:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return USAGE
    client = (
        VaultClient(http11_transports(pool_size=2), Uncounted(), RetryPolicy()) if dry is not None else None
    )
    status = OK
    for name in args.files:
        try:
            text = Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"{name}: cannot read: {exc}", file=sys.stderr)
            status = USAGE
            continue
        for finding in lint_text(text, dry, client):
            if finding.problem:
                if status == OK:
                    status = PROBLEMS
            elif (args.quiet and not finding.text.startswith("warning:")) or (
                finding.text.startswith("skipped:") and not args.verbose
            ):
                continue
            where = f"document {finding.document}" + (f" ({finding.label})" if finding.label else "")
            print(f"{name}: {where}: {finding.text}" if finding.document else f"{name}: {finding.text}")
    if client is not None:
        client.close()
    return status


def _dry_run_options(args: argparse.Namespace, environ: Mapping[str, str]) -> DryRun | None:
    if args.vault is None:
        if args.token_file or args.jwt_file:
            raise ValueError("--token-file and --jwt-file need --vault ADDRESS")
        return None
    if args.token_file and args.jwt_file:
        raise ValueError("give --token-file or --jwt-file, not both")
    jwt = _secret_file(args.jwt_file) if args.jwt_file else ""
    token = _secret_file(args.token_file) if args.token_file else _environment_token(environ)
    if not (jwt or token):
        raise ValueError("--vault needs --jwt-file, --token-file or VAULT_TOKEN")
    return DryRun(args.vault, ca_cert=args.vault_ca_cert, token="" if jwt else token, jwt=jwt)


def _environment_token(environ: Mapping[str, str]) -> str:
    return (environ.get("VAULT_TOKEN", "") or environ.get("BAO_TOKEN", "")).strip()


def _secret_file(name: str) -> str:
    try:
        text = Path(name).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {name}: {exc.strerror if isinstance(exc, OSError) else exc}") from None
    if not text:
        raise ValueError(f"{name} is empty")
    return text


def lint_text(text: str, dry: DryRun | None = None, client: VaultClient | None = None) -> Iterator[Finding]:
    """Findings for each document of one file, in order; a YAML error ends the file."""
    loaded = yaml.safe_load_all(text)
    index, classes = 0, 0
    while True:
        index += 1
        try:
            document = next(loaded)
        except StopIteration:
            break
        except yaml.YAMLError:
            # The driver's reader words the syntax error (position and gist, never the input).
            yield Finding(index, "", _yaml_problem(text), problem=True)
            return
        if document is not None and not (isinstance(document, Mapping) and document.get("kind") != KIND):
            classes += 1
        yield from _lint_document(index, document, dry, client)
    if not classes:
        yield Finding(0, "", f"no document of kind {KIND}", problem=True)


def _yaml_problem(text: str) -> str:
    try:
        parse_secret_provider_classes(text, source=_SOURCE)
    except InvalidSecretProviderClass as exc:
        return _strip(str(exc), f"{_SOURCE}: ")
    raise AssertionError("safe_load_all failed on text that parse_secret_provider_classes accepts")


def _lint_document(
    index: int, document: object, dry: DryRun | None, client: VaultClient | None
) -> Iterator[Finding]:
    if document is None:
        return
    name = _name_of(document)
    label = f"{KIND}/{name}" if name else ""
    if isinstance(document, Mapping) and document.get("kind") != KIND:
        yield Finding(
            index, f"{document.get('kind')}/{name}" if name else "", "skipped: not a " + KIND, False
        )
        return
    try:
        # One document at a time, so a bad document does not hide the ones after it.
        (spc,) = parse_secret_provider_classes(yaml.safe_dump(document), source=_SOURCE)
    except InvalidSecretProviderClass as exc:
        prefix = f"{_SOURCE}: document 1 ({KIND} {name!r}): " if name else f"{_SOURCE}: document 1: "
        yield Finding(index, label, _strip(str(exc), prefix), problem=True)
        return
    if spc.provider not in OUR_PROVIDERS:
        yield Finding(
            index, label, f"skipped: provider is {spc.provider!r}, not 'vault' or 'openbao'", problem=False
        )
        return
    for warning in unknown_parameter_warnings(spc.parameters):
        yield Finding(index, label, warning, problem=False)
    objects, object_problems = parse_objects(spc.parameters.get("objects", ""))
    spec = document.get("spec") if isinstance(document, Mapping) else None
    secret_objects = spec.get("secretObjects") if isinstance(spec, Mapping) else None
    sync_problems = secret_object_problems(secret_objects, None if object_problems else objects)
    try:
        config = mount_config(spc)
    except InvalidRequest as exc:
        for problem in [*exc.problems, *sync_problems]:
            yield Finding(index, label, problem, problem=True)
        return
    for problem in sync_problems:
        yield Finding(index, label, problem, problem=True)
    if sync_problems:
        return
    yield Finding(index, label, "ok", problem=False)
    if dry is not None and client is not None:
        for note in dry_run(config, dry, client):
            yield Finding(index, label, note.text, note.problem)


def mount_problems(spc: SecretProviderClass) -> list[str]:
    """What a Mount of `spc` would reject before calling Vault, for a stand-in pod with a token."""
    try:
        mount_config(spc)
    except InvalidRequest as exc:
        return exc.problems
    return []


def mount_config(spc: SecretProviderClass) -> MountConfig:
    """The Mount's view of `spc` for a stand-in pod with a token; raises InvalidRequest as a Mount would."""
    audience = spc.parameters.get("audience") or DEFAULT_AUDIENCE
    attributes, secrets = build_mount_payload(
        spc.parameters,
        spc_name=spc.name,
        pod=PodInfo(
            namespace=spc.namespace or "default", name="lint", uid=LINT_POD_UID, service_account="lint"
        ),
        tokens={audience: LINT_TOKEN},
    )
    config = parse_mount_request(attributes, secrets, "/lint", "420")
    # The provider's defaults with no flags or environment: the SPC's own address must stand up.
    resolve_target(parse_settings([], environ={}), config.vault_overrides)
    return config


def _name_of(document: object) -> str:
    if not isinstance(document, Mapping):
        return ""
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return name if isinstance(name, str) else ""


def _strip(message: str, prefix: str) -> str:
    return message[len(prefix) :] if message.startswith(prefix) else message
