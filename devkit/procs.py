"""Process plumbing shared by the backends: environments, log tails, stopping children."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["clean_env", "log_tail", "stop_process"]

# Dev-mode OpenBao prints its unseal key and root token; PostgreSQL can echo statements
# containing passwords. None of that may reach an exception message.
_SECRET_LINE = re.compile(r"unseal key|root token|password|token:", re.IGNORECASE)


def clean_env(
    home: Path, drop_prefixes: tuple[str, ...] = (), extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """This process's environment without variables starting with `drop_prefixes`, HOME set to `home`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(drop_prefixes)}
    env["HOME"] = str(home)
    env.update(extra or {})
    return env


def log_tail(path: Path, lines: int = 25) -> str:
    """The last `lines` lines of a log file, secret-looking lines redacted, for error messages."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(log {path} unreadable: {exc.strerror})"
    tail = text.splitlines()[-lines:]
    redacted = ["[line redacted]" if _SECRET_LINE.search(line) else line for line in tail]
    return "\n".join(redacted) if redacted else "(log is empty)"


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate a child, wait for it, and kill it if it does not exit within `timeout` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Service:
    """A backend that is started and stopped once; use it as a context manager."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
