"""What `lint` checks beyond the Mount path: `secretObjects` against `objects`, and unread parameters.

The driver (or the sync controller) builds a Kubernetes Secret from each
`secretObjects` entry, reading `data[].objectName` from the files of the Mount. A
reference to a file no object writes, an invalid Secret key or name, or a TLS Secret
without its certificate or key fails only at sync time, in the driver's log, after
the pod has started. Unread parameters are warnings: a typo such as `vaultAdress`
silently falls back to the default address, but the driver adds keys of its own too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from provider.request.objects import SecretObject
from provider.request.parameter_names import suggestion, unknown_parameters

__all__ = ["secret_object_problems", "unknown_parameter_warnings"]

# Kubernetes' IsConfigMapKey; a Secret's data keys follow the same rule.
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")
# A DNS subdomain (RFC 1123), the rule for a Secret's name.
_SECRET_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
MAX_NAME = 253
REQUIRED_KEYS = {"kubernetes.io/tls": ("tls.crt", "tls.key")}


def unknown_parameter_warnings(parameters: Mapping[str, str]) -> list[str]:
    """One warning per parameter no one reads, with the likely intended name when one is close."""
    warnings = []
    for key in unknown_parameters(dict(parameters)):
        close = suggestion(key)
        hint = f"; did you mean {close}?" if close else ""
        warnings.append(f"warning: unknown parameter {key!r} is ignored{hint}")
    return warnings


def secret_object_problems(secret_objects: object, objects: Iterable[SecretObject] | None) -> list[str]:
    """Problems of `spec.secretObjects`; `objects` None (unparseable) skips the objectName check."""
    if secret_objects is None:
        return []
    if not isinstance(secret_objects, list):
        return ["secretObjects must be a list"]
    files = _file_names(objects) if objects is not None else None
    problems: list[str] = []
    for index, entry in enumerate(secret_objects):
        where = f"secretObjects[{index}]"
        if not isinstance(entry, Mapping):
            problems.append(f"{where} must be a mapping with secretName, type and data")
            continue
        name = entry.get("secretName")
        if not isinstance(name, str) or not _valid_name(name):
            problems.append(
                f"{where}.secretName {name!r} must be a Kubernetes Secret name "
                "(lower-case letters, digits, '-' and '.', at most 253 characters)"
            )
        problems.extend(_data_problems(where, entry.get("data"), entry.get("type"), files))
    return problems


def _data_problems(
    where: str, data: object, secret_type: object, files: tuple[set[str], set[str]] | None
) -> list[str]:
    if not isinstance(data, list) or not data:
        return [f"{where}.data must be a non-empty list of objectName and key"]
    problems: list[str] = []
    keys: dict[str, int] = {}
    for index, item in enumerate(data):
        at = f"{where}.data[{index}]"
        if not isinstance(item, Mapping):
            problems.append(f"{at} must be a mapping with objectName and key")
            continue
        object_name, key = item.get("objectName"), item.get("key")
        if not isinstance(object_name, str) or not object_name:
            problems.append(f"{at}.objectName is required: the file of the volume to take the value from")
        elif files is not None and not _is_written(object_name, files):
            known = ", ".join(sorted(files[0])) or "none"
            problems.append(f"{at}.objectName {object_name!r} is not among objects (objectName: {known})")
        if not isinstance(key, str) or not _valid_key(key):
            problems.append(
                f"{at}.key {key!r} must be a Kubernetes Secret key: letters, digits, '-', '_' and '.', "
                "at most 253 characters, not '.' or '..'"
            )
        elif key in keys:
            problems.append(f"{at}.key {key!r} is also {where}.data[{keys[key]}].key")
        else:
            keys[key] = index
    missing = [key for key in REQUIRED_KEYS.get(str(secret_type), ()) if key not in keys]
    if missing:
        problems.append(f"{where}.data of type {secret_type} needs the keys {', '.join(missing)}")
    return problems


def _file_names(objects: Iterable[SecretObject]) -> tuple[set[str], set[str]]:
    """(every objectName, the objectNames written as a directory: `format: files` writes name/<key>)."""
    names: set[str] = set()
    directories: set[str] = set()
    for obj in objects:
        names.add(obj.name)
        if obj.format == "files":
            directories.add(obj.name)
    return names, directories


def _is_written(object_name: str, files: tuple[set[str], set[str]]) -> bool:
    names, directories = files
    if object_name in names and object_name not in directories:
        return True
    parent, _, rest = object_name.rpartition("/")
    return bool(rest) and any(parent == d or parent.startswith(f"{d}/") for d in directories)


def _valid_key(key: str) -> bool:
    return len(key) <= MAX_NAME and key not in (".", "..") and bool(_SECRET_KEY.fullmatch(key))


def _valid_name(name: str) -> bool:
    return len(name) <= MAX_NAME and bool(_SECRET_NAME.fullmatch(name))
