"""The SecretProviderClass parameter vocabulary: OpenBao's spellings folded into ours, the rest flagged.

Pure. `resolve_aliases` runs first in `parse_mount_request`, so every later step sees
one vocabulary (`vault*`, `roleName`). openbao-csi-provider v2 reads each setting under
the prefixes `bao`, `openbao` and `vault`, and the role also as `<prefix>RoleName`; an
SPC written for it therefore works here unchanged. Two spellings of one setting with
different values are refused, naming both: silently picking one would send the pod's
token to an address its author did not choose.

`unknown_parameters` lists keys nobody reads, for a warning (a typo such as
`vaultAdress` would otherwise fall back to the default address without a word). Keys
the kubelet and the driver add to every request are known: `csi.storage.k8s.io/*`
(podInfoOnMount, the tokens, `ephemeral`), `secretProviderClass` and `providerName`
(the volume attributes the driver itself reads).
"""

from __future__ import annotations

import difflib

__all__ = [
    "ALIASES",
    "KNOWN_PARAMETERS",
    "OPENBAO_PREFIXES",
    "resolve_aliases",
    "suggestion",
    "unknown_parameters",
]

#: Settings spelled `<prefix><suffix>`; our canonical prefix is `vault`.
_PREFIXED = (
    "Address",
    "Namespace",
    "CACertPath",
    "CADirectory",
    "TLSServerName",
    "TLSClientCertPath",
    "TLSClientKeyPath",
    "SkipTLSVerify",
    "AuthMountPath",
    "KubernetesMountPath",
)
OPENBAO_PREFIXES = ("openbao", "bao")

#: alias → canonical name.
ALIASES: dict[str, str] = {
    **{f"{prefix}{suffix}": f"vault{suffix}" for prefix in OPENBAO_PREFIXES for suffix in _PREFIXED},
    **{f"{prefix}RoleName": "roleName" for prefix in (*OPENBAO_PREFIXES, "vault")},
}

KNOWN_PARAMETERS = frozenset(
    {
        "roleName",
        "objects",
        "audience",
        "credentialScope",
        "refreshInterval",
        *(f"vault{suffix}" for suffix in _PREFIXED),
    }
)
_DRIVER_KEYS = frozenset({"secretProviderClass", "providerName"})
_DRIVER_PREFIX = "csi.storage.k8s.io/"


def resolve_aliases(params: dict[str, str], problems: list[str]) -> dict[str, str]:
    """`params` with every alias renamed to its canonical name; conflicting spellings go to `problems`."""
    spellings: dict[str, list[str]] = {}
    for key in params:
        canonical = ALIASES.get(key)
        if canonical is not None:
            spellings.setdefault(canonical, []).append(key)
    if not spellings:
        return params
    resolved = {key: value for key, value in params.items() if key not in ALIASES}
    for canonical, aliases in spellings.items():
        names = sorted([canonical, *aliases] if canonical in params else aliases)
        values = {params[name] for name in names}
        if len(values) > 1:
            problems.append(
                f"{' and '.join(names)} are spellings of one setting with different values; keep only one"
            )
        resolved[canonical] = params[names[0]]
    return resolved


def unknown_parameters(params: dict[str, str]) -> tuple[str, ...]:
    """The keys of `params` (canonical or alias) that no one reads, sorted."""
    return tuple(
        sorted(
            key
            for key in params
            if key not in KNOWN_PARAMETERS
            and key not in ALIASES
            and key not in _DRIVER_KEYS
            and not key.startswith(_DRIVER_PREFIX)
        )
    )


def suggestion(key: str) -> str | None:
    """The known parameter `key` is most likely a misspelling of, if one is close."""
    candidates = {name.lower(): name for name in (*KNOWN_PARAMETERS, *ALIASES)}
    close = difflib.get_close_matches(key.lower(), list(candidates), n=1, cutoff=0.8)
    return candidates[close[0]] if close else None
