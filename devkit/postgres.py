"""A private, throwaway PostgreSQL cluster on 127.0.0.1 for OpenBao's database secrets engine.

The cluster lives in a temporary directory (data, unix socket, log), listens on a free
port, runs with fsync off, and is deleted on `stop`. Queries go through `psql`, so no
Python driver is needed.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from devkit.errors import BackendFailed, BackendMissing
from devkit.ports import free_port
from devkit.procs import Service, log_tail

__all__ = ["PostgresServer", "find_pg_bin"]

_HOST = "127.0.0.1"
_SUPERUSER = "postgres"
_MISSING = (
    "PostgreSQL server binaries not found: install Debian's postgresql package "
    "(apt-get install -y postgresql) or set PG_BIN"
)
_REQUIRED = ("initdb", "pg_ctl", "postgres", "psql")


def find_pg_bin() -> Path:
    """The directory holding initdb, pg_ctl, postgres and psql, or raise `BackendMissing`.

    Uses $PG_BIN when set; otherwise `pg_config --bindir`, then Debian's /usr/lib/postgresql/*/bin
    (newest major version first). Debian's `pg_config` comes from libpq-dev and may point at
    a directory without the server binaries, hence the check of every candidate.
    """
    explicit = os.environ.get("PG_BIN")
    if explicit:
        # An explicit choice is not second-guessed: a wrong PG_BIN is reported, not skipped.
        if _has_binaries(Path(explicit)):
            return Path(explicit)
        raise BackendMissing(f"{_MISSING} (PG_BIN={explicit} lacks one of {', '.join(_REQUIRED)})")
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if result.returncode == 0 and result.stdout.strip():
            candidates.append(Path(result.stdout.strip()))
    debian = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += [Path(p) for p in sorted(debian, key=_major_version, reverse=True)]
    for directory in candidates:
        if _has_binaries(directory):
            return directory
    raise BackendMissing(_MISSING)


def _has_binaries(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in _REQUIRED)


def _major_version(bindir: str) -> int:
    name = Path(bindir).parent.name
    return int(name) if name.isdigit() else 0


class PostgresServer(Service):
    """A PostgreSQL cluster with superuser `postgres` and a random password.

    Use as a context manager or `start`/`stop`. As root, initdb and pg_ctl (which refuse to run
    as root) run as the `postgres` account, or as `nobody` when that account does not exist.
    """

    def __init__(self, startup_timeout: float = 30.0) -> None:
        self.startup_timeout = startup_timeout
        self.password = secrets.token_urlsafe(24)
        self.port = 0
        self.startup_seconds = 0.0
        self.scratch: Path | None = None
        self._bin: Path | None = None
        self._runner: list[str] = []

    @property
    def url(self) -> str:
        """libpq URL of the superuser connection over TCP."""
        return f"postgresql://{_SUPERUSER}:{self.password}@{_HOST}:{self.port}/postgres?sslmode=disable"

    @property
    def vault_connection_url(self) -> str:
        """`connection_url` for OpenBao's postgresql plugin: credentials left as templates."""
        return f"postgresql://{{{{username}}}}:{{{{password}}}}@{_HOST}:{self.port}/postgres?sslmode=disable"

    @property
    def superuser(self) -> str:
        """Name of the superuser the password belongs to."""
        return _SUPERUSER

    def start(self) -> None:
        """initdb a fresh cluster and start it; raise `BackendMissing` or `BackendFailed`."""
        self._bin = find_pg_bin()
        started = time.monotonic()
        scratch = self.scratch = Path(tempfile.mkdtemp(prefix="devkit-pg-"))
        try:
            self._runner = _prepare_owner(scratch)
            self._initdb(scratch)
            self.port = free_port()
            self._pg_ctl(
                scratch,
                "start",
                "-w",
                f"--timeout={int(self.startup_timeout)}",
                f"--log={scratch / 'postgres.log'}",
                "-o",
                # Values contain no spaces: pg_ctl hands this string to a shell.
                f"-c listen_addresses={_HOST} -p {self.port} -c unix_socket_directories={scratch} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            )
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def stop(self) -> None:
        """Stop the cluster immediately and delete its directory; idempotent."""
        scratch, self.scratch = self.scratch, None
        if scratch is None:
            return
        if (scratch / "data" / "postmaster.pid").exists():
            self._pg_ctl(scratch, "stop", "-m", "immediate", "-w", check=False)
        shutil.rmtree(scratch, ignore_errors=True)

    def psql(self, sql: str, *, login: tuple[str, str] | None = None, **variables: str) -> str:
        """Run `sql` and return unaligned, tuples-only output; raise `BackendFailed` on any error.

        Connects over TCP as the superuser, or as `login` = (user, password), e.g. to prove
        that dynamic credentials work. `variables` become psql variables: refer to them as
        `:'name'` in `sql` for safe quoting.
        """
        user, password = login or (_SUPERUSER, self.password)
        if self._bin is None or self.scratch is None:
            raise RuntimeError("PostgreSQL is not started")
        args = [str(self._bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        args += ["-h", _HOST, "-p", str(self.port), "-U", user, "-d", "postgres"]
        for name, value in variables.items():
            args += ["-v", f"{name}={value}"]
        # psql expands variables only in scripts, not in -c, so the SQL goes in on stdin.
        env = {**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5"}
        result = subprocess.run(args, input=sql, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            raise BackendFailed(f"psql failed (exit {result.returncode}): {result.stderr.strip()}")
        return result.stdout.strip()

    def user_exists(self, name: str) -> bool:
        """Whether a role called `name` exists."""
        return self.psql("SELECT count(*) FROM pg_roles WHERE rolname = :'name';", name=name) == "1"

    def count_roles(self, prefix: str) -> int:
        """How many roles have names starting with `prefix`."""
        sql = "SELECT count(*) FROM pg_roles WHERE starts_with(rolname, :'prefix');"
        return int(self.psql(sql, prefix=prefix))

    def _initdb(self, scratch: Path) -> None:
        pwfile = scratch / "pwfile"
        # The password file exists only for initdb's run and is readable by the cluster owner only.
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.password + "\n")
        owner = scratch.stat()
        os.chown(pwfile, owner.st_uid, owner.st_gid)
        try:
            self._run(
                scratch,
                "initdb",
                f"--pgdata={scratch / 'data'}",
                f"--username={_SUPERUSER}",
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def _pg_ctl(self, scratch: Path, *args: str, check: bool = True) -> None:
        data = f"--pgdata={scratch / 'data'}"
        self._run(scratch, "pg_ctl", data, "--silent", *args, check=check, what=f"pg_ctl {args[0]}")

    def _run(self, scratch: Path, program: str, *args: str, check: bool = True, what: str = "") -> None:
        if self._bin is None:
            raise RuntimeError("PostgreSQL binaries not located yet")
        result = subprocess.run(
            [*self._runner, str(self._bin / program), *args],
            capture_output=True,
            text=True,
            # The unprivileged runner must be able to enter its working directory.
            cwd=scratch,
            env={**os.environ, "LC_ALL": "C"},
            check=False,
        )
        if check and result.returncode != 0:
            detail = result.stderr.strip() or result.stdout.strip()
            log = scratch / "postgres.log"
            tail = f"\nserver log tail:\n{log_tail(log)}" if log.exists() else ""
            raise BackendFailed(f"{what or program} failed (exit {result.returncode}): {detail}{tail}")


def _prepare_owner(scratch: Path) -> list[str]:
    """Hand the directory to an unprivileged account when root; return the command prefix to run as it."""
    if os.geteuid() != 0:
        return []
    try:
        account = pwd.getpwnam("postgres")
        runner = ["runuser", "-u", "postgres", "--"]
    except KeyError:
        account = pwd.getpwnam("nobody")
        runner = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    os.chown(scratch, account.pw_uid, account.pw_gid)
    return runner
