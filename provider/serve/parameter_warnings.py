"""One log warning per SecretProviderClass whose parameters include keys no one reads.

The driver polls every volume about once a minute, so warning on every Mount would
bury the log; warning never would hide a typo such as `vaultAdress` (which silently
falls back to the default address). The memory of what was said is bounded: past
`capacity` SPCs the oldest is forgotten, and at worst warned about once more.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from provider.request.parameter_names import suggestion

__all__ = ["UnknownParameterWarnings"]

log = logging.getLogger("provider.mount")

DEFAULT_CAPACITY = 1024


class UnknownParameterWarnings:
    """Warns once per (namespace, SPC, set of unknown keys); names the keys, never their values."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._said: OrderedDict[tuple[str, str, tuple[str, ...]], None] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._said)

    def check(self, namespace: str, spc: str, unknown: tuple[str, ...]) -> None:
        if not unknown:
            return
        key = (namespace, spc, unknown)
        with self._lock:
            if key in self._said:
                self._said.move_to_end(key)
                return
            self._said[key] = None
            if len(self._said) > self._capacity:
                self._said.popitem(last=False)
        log.warning(
            "SecretProviderClass %s/%s has parameters this provider does not read: %s "
            "(ignored; check for typos)",
            namespace,
            spc or "unknown",
            ", ".join(_described(key) for key in unknown),
            extra={"spc": spc, "unknown_parameters": list(unknown)},
        )


def _described(key: str) -> str:
    # An SPC author chose the key: keep it to one short printable line in the log.
    shown = key if key.isprintable() and len(key) <= 64 else repr(key[:64])
    close = suggestion(key)
    return f"{shown} (did you mean {close}?)" if close else shown
