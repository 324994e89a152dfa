"""The provider under test: any program serving the v1alpha1 socket, started from a command template.

The command is split like a shell would (no shell runs it) after the placeholders are
filled in. It runs in a session of its own so that stopping it also reaches whatever it
started (a wrapper's children); it gets SIGTERM first, as from the kubelet, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import stat
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from bench.procfs import ProcessSample, sample_tree
from provider.tools.driver import ProviderClient

__all__ = ["ProviderFailed", "ProviderProcess"]

_READY_TIMEOUT_SECONDS = 30.0
_STOP_TIMEOUT_SECONDS = 25.0
_POLL_SECONDS = 0.02
_LOG_TAIL_LINES = 30


class ProviderFailed(RuntimeError):
    """The provider did not start or died; the message carries its log tail."""


class ProviderProcess:
    """One provider process, its unix socket and its log file."""

    def __init__(self, argv: list[str], env: Mapping[str, str], socket_path: Path, log_path: Path) -> None:
        self.argv = argv
        self.env = dict(env)
        self.socket_path = socket_path
        self.log_path = log_path
        self.runtime = ("", "")  # (runtime_name, runtime_version) from Version
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_template(
        cls, command: str, env: Mapping[str, str], socket_path: Path, log_path: Path
    ) -> ProviderProcess:
        argv = shlex.split(command)
        if not argv:
            raise ValueError("--provider-cmd is empty")
        return cls(argv, env, socket_path, log_path)

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("the provider is not started")
        return self._proc.pid

    def start(self) -> None:
        """Launch the process and wait until its socket answers Version; raise `ProviderFailed` if not."""
        with self.log_path.open("ab") as log:
            try:
                self._proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ProviderFailed(f"cannot run {self.argv[0]!r}: {exc.strerror}") from None
        deadline = time.monotonic() + _READY_TIMEOUT_SECONDS
        with ProviderClient(self.socket_path, timeout_seconds=2) as client:
            while True:
                self.check_alive()
                if self._is_socket():
                    try:
                        _, name, version = client.version()
                    except Exception:  # noqa: S110 - not serving yet; the deadline decides
                        pass
                    else:
                        self.runtime = (name, version)
                        return
                if time.monotonic() > deadline:
                    raise ProviderFailed(
                        f"the provider did not answer Version on {self.socket_path} within "
                        f"{_READY_TIMEOUT_SECONDS:.0f} s; log tail:\n{self.log_tail()}"
                    )
                time.sleep(_POLL_SECONDS)

    def check_alive(self) -> None:
        """Raise `ProviderFailed` when the process has exited."""
        if self._proc is None or self._proc.returncode is not None:
            return
        try:
            # Not reaped here, so that `stop` can still reach the rest of its session safely.
            exited = os.waitid(os.P_PID, self._proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            exited = None
        if exited is not None:
            raise ProviderFailed(
                f"the provider exited (status {exited.si_status}); log tail:\n{self.log_tail()}"
            )

    def sample(self) -> ProcessSample:
        return sample_tree(self.pid)

    def stop(self) -> int | None:
        """SIGTERM, wait, then SIGKILL the whole session; returns the exit code (None if never started)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.returncode is None:
            # os.kill, not Popen.send_signal, which would reap an exited child first.
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            _wait_unreaped(proc.pid, _STOP_TIMEOUT_SECONDS)
            # Its session: our child leads it (start_new_session), so the group id is its pid. Until
            # it is reaped below, that pid cannot be reused, so this reaches only what it started.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"

    def _is_socket(self) -> bool:
        try:
            return stat.S_ISSOCK(self.socket_path.lstat().st_mode)
        except FileNotFoundError:
            return False


def _wait_unreaped(pid: int, timeout: float) -> None:
    """Wait up to `timeout` for `pid` to exit, leaving it a zombie (not reaped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return
        except ChildProcessError:
            return
        time.sleep(_POLL_SECONDS)
