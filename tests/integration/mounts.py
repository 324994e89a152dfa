"""Helpers the integration suites share: SecretProviderClass parameters and Mounts as pod team-a/app-0."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from harness import ProviderProcess, pod_uid

from devkit import ServiceAccountTokenIssuer
from provider.tools.driver import MountResult, ProviderCallError

__all__ = [
    "NAMESPACE",
    "SERVICE_ACCOUNT",
    "app_token",
    "contents",
    "kv_spc",
    "modes",
    "mount",
    "mount_error",
    "spc",
]

NAMESPACE = "team-a"
SERVICE_ACCOUNT = "app"


def spc(objects: str, role: str = "app", **parameters: str) -> dict[str, str]:
    """SecretProviderClass parameters; `objects` is the YAML block string of the manifest."""
    return {"roleName": role, "objects": textwrap.dedent(objects).strip() + "\n", **parameters}


def kv_spc(path: str, **parameters: str) -> dict[str, str]:
    """One object `value` from key `value` of the KV v2 secret at secret/data/<path>."""
    return spc(f"- objectName: value\n  secretPath: secret/data/{path}\n  secretKey: value\n", **parameters)


def mount(provider: ProviderProcess, parameters: dict[str, str], **kwargs: Any) -> MountResult:
    """Mount as pod team-a/app-0 (service account `app`) unless the caller says otherwise."""
    kwargs.setdefault("namespace", NAMESPACE)
    kwargs.setdefault("service_account", SERVICE_ACCOUNT)
    return provider.mount(parameters, **kwargs)


def mount_error(provider: ProviderProcess, parameters: dict[str, str], **kwargs: Any) -> ProviderCallError:
    with pytest.raises(ProviderCallError) as info:
        mount(provider, parameters, **kwargs)
    return info.value


def contents(result: MountResult) -> dict[str, bytes]:
    return {file.path: file.contents for file in result.files}


def modes(result: MountResult) -> dict[str, int]:
    return {file.path: file.mode for file in result.files}


def app_token(issuer: ServiceAccountTokenIssuer, pod_name: str = "app-0", audience: str = "vault") -> str:
    """A service-account JWT for pod team-a/<pod_name> of service account `app`."""
    return issuer.mint(NAMESPACE, SERVICE_ACCOUNT, pod_name, pod_uid(NAMESPACE, pod_name), [audience])
