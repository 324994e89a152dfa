"""What a SecretProviderClass allows the provider to keep between polls: `credentialScope`, `refreshInterval`.

Pure. Both are opt-in and the defaults are upstream's behaviour, apart from kept
dynamic secrets (which this provider always keeps per pod):

- `credentialScope: pod` (the default): a kept dynamic secret belongs to the one pod
  that obtained it. `serviceAccount`: pods of one workload identity (namespace,
  service account, role, auth mount, audience, Vault address and namespace) share
  it, so replicas present one database user and a synced Secret stops flipping
  between replicas' values.
- `refreshInterval` (a Go duration; absent or 0: read on every poll): a static read
  (KV and the like) is served from its last good answer for that long, which bounds
  the load a large fleet of polling pods puts on Vault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from provider.go_syntax import parse_duration

__all__ = ["MAX_REFRESH_SECONDS", "CachePolicy", "CredentialScope", "parse_cache_policy"]

CredentialScope = Literal["pod", "serviceAccount"]
SCOPES: tuple[CredentialScope, ...] = ("pod", "serviceAccount")
# A day: longer would hide a changed secret from pods for longer than anyone expects.
MAX_REFRESH_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class CachePolicy:
    credential_scope: CredentialScope = "pod"
    refresh_seconds: float = 0.0  # 0: static reads go to Vault on every poll

    def scope_of(self, namespace: str, service_account: str, audience: str, pod_uid: str) -> str:
        """Who a kept answer belongs to: one pod, or one workload identity."""
        if self.credential_scope == "serviceAccount":
            return f"serviceAccount:{namespace}/{service_account}@{audience}"
        return f"pod:{pod_uid}"


def parse_cache_policy(params: dict[str, str], problems: list[str]) -> CachePolicy:
    """The policy the parameters ask for; problems are appended for bad values."""
    scope = params.get("credentialScope", "") or "pod"
    if scope not in SCOPES:
        problems.append(f"credentialScope {scope!r} must be pod (the default) or serviceAccount")
        scope = "pod"
    text = params.get("refreshInterval", "")
    seconds = parse_duration(text) if text else 0.0
    if seconds is None or seconds > MAX_REFRESH_SECONDS:
        problems.append(
            f"refreshInterval {text!r} must be a Go duration between 0s and 24h, such as 30s or 5m"
        )
        seconds = 0.0
    return CachePolicy(scope, seconds)  # type: ignore[arg-type]
