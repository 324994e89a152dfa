"""Restart without churn (`-state-dir`): the token and lease caches restored at start, saved while serving.

At start the state file is read once; a file that does not verify (another HMAC
key, damaged, another format version, too big) is ignored with one warning and the
provider starts empty, as it would without the flag. Restored tokens are looked up
in Vault on first use (`token_cache`); restored leases are looked up on every poll
anyway (`leases`). A background thread saves when a cache changed, at most every
SAVE_INTERVAL_SECONDS, and once more when the provider stops. Secrets reach the disk
only sealed (`state_store`) and never a log line.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provider.mount.cache_records import (
    Clocks,
    lease_records,
    restored_leases,
    restored_tokens,
    token_records,
)
from provider.mount.lease_cache import LeaseCache
from provider.mount.token_cache import TokenCache
from provider.serve.metrics import Metrics
from provider.serve.state_store import (
    MAX_STATE_BYTES,
    STATE_FILE,
    StateFileError,
    StateKeys,
    read_state,
    remove_stale_temporaries,
    seal,
    write_state,
)

__all__ = ["SAVE_INTERVAL_SECONDS", "RestartState"]

# Often enough that a SIGKILL loses at most a few seconds of new leases, rarely
# enough that a node's worth of rotation polls does not keep the disk busy.
SAVE_INTERVAL_SECONDS = 5.0
# Cache hits only move the entries' last use (for the idle expiry, a day): saving
# that every 10 minutes is plenty.
TOUCH_INTERVAL_SECONDS = 600.0
DOCUMENT_FORMAT = 1
# A temporary file older than this was left by a writer killed mid-save.
STALE_TEMPORARY_SECONDS = 600.0

log = logging.getLogger("provider.state")


class RestartState:
    """The state file of one provider process: `restore` once, `start` the writer, `close` at the end."""

    def __init__(
        self,
        directory: Path,
        keys: StateKeys,
        tokens: TokenCache,
        leases: LeaseCache,
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        interval: float = SAVE_INTERVAL_SECONDS,
    ) -> None:
        self._directory = directory
        self._path = directory / STATE_FILE
        self._keys = keys
        self._tokens = tokens
        self._leases = leases
        self._metrics = metrics
        self._clock = clock
        self._wall_clock = wall_clock
        self._interval = interval
        self._saved_changes = (-1, -1)
        self._saved_touches = (-1, -1)
        self._saved_at = -float("inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._save_lock = threading.Lock()

    def restore(self) -> None:
        """Fill the caches from the state file; anything that does not verify is ignored, never raised."""
        if self._directory.is_dir():
            remove_stale_temporaries(self._directory, STALE_TEMPORARY_SECONDS, time.time())
        try:
            plaintext = read_state(self._path, self._keys)
        except StateFileError as exc:
            self._ignore(exc.reason, str(exc))
            return
        if plaintext is None:
            log.info("no restart state in %s yet: starting empty", self._directory)
            return
        try:
            document = json.loads(plaintext)
        except ValueError:
            document = None
        if not isinstance(document, dict) or document.get("format") != DOCUMENT_FORMAT:
            self._ignore("unreadable", "its contents are not a state document this provider reads")
            return
        clocks = Clocks(self._clock(), self._wall_clock())
        tokens = restored_tokens(document.get("tokens"), clocks)
        leases = restored_leases(document.get("leases"), clocks)
        restored = {
            "token": self._tokens.restore(tokens.entries),
            "lease": self._leases.restore(leases.entries),
        }
        for cache, count in restored.items():
            self._metrics.state_restored(cache, count)
        dropped = tokens.dropped + leases.dropped
        for reason, count in dropped.items():
            self._metrics.state_dropped(reason, count)
        if dropped:
            reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(dropped.items()))
            log.warning("dropped %d entries of the restart state: %s", dropped.total(), reasons)
        log.info(
            "restored %d Vault tokens and %d kept secrets from %s",
            restored["token"],
            restored["lease"],
            self._directory,
        )

    def start(self) -> None:
        """Save in the background whenever the caches change."""
        self._thread = threading.Thread(target=self._run, name="state-writer", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the writer and save one last time (after the drain, so the last Mounts are in)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.save_if_changed(final=True)

    def save_if_changed(self, final: bool = False) -> bool:
        """Save when a cache changed (or, less often, was used) since the last save; True if saved."""
        changes = (self._tokens.changes, self._leases.changes)
        touches = (self._tokens.touches, self._leases.touches)
        touched = touches != self._saved_touches and (
            final or self._clock() - self._saved_at >= TOUCH_INTERVAL_SECONDS
        )
        if changes == self._saved_changes and not touched:
            return False
        saved = self.save()
        if saved:
            # The counters read before the snapshot: a change made during the save is saved next time.
            self._saved_changes, self._saved_touches = changes, touches
        return saved

    def save(self) -> bool:
        """Write the caches' live entries now; failures are logged and counted, never raised."""
        with self._save_lock:
            try:
                self._write()
            except (OSError, StateFileError) as exc:
                log.warning("cannot save the restart state to %s: %s", self._path, _reason(exc))
                self._metrics.state_save("failure")
                return False
            except (TypeError, ValueError) as exc:
                # Never the message: it could quote a value.
                log.warning("cannot save the restart state: %s", type(exc).__name__)
                self._metrics.state_save("failure")
                return False
            self._saved_at = self._clock()
            self._metrics.state_save("success")
            return True

    def _write(self) -> None:
        clocks = Clocks(self._clock(), self._wall_clock())
        document: dict[str, Any] = {
            "format": DOCUMENT_FORMAT,
            "saved_at": clocks.wall,
            "tokens": token_records(self._tokens.snapshot(), clocks),
            "leases": lease_records(self._leases.snapshot(), clocks),
        }
        sealed = seal(self._keys, json.dumps(document, separators=(",", ":")).encode())
        if len(sealed) > MAX_STATE_BYTES:
            raise StateFileError("too-big", f"the state would be {len(sealed)} bytes, over {MAX_STATE_BYTES}")
        write_state(self._directory, sealed)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.save_if_changed()

    def _ignore(self, reason: str, why: str) -> None:
        log.warning("ignoring the restart state %s: %s; starting empty", self._path, why)
        self._metrics.state_ignored(reason)


def _reason(exc: OSError | StateFileError) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return str(exc)
