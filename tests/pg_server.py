"""A throwaway PostgreSQL server for the test session (Debian's ``postgresql`` package).

``find_bindir()`` looks for ``initdb``/``pg_ctl`` on PATH, then in ``/usr/lib/postgresql/*/bin``
(newest version first). ``PostgresServer.start()`` creates a data directory in a fresh temporary
directory, runs ``initdb`` and ``pg_ctl start`` on a free loopback port, and ``stop()`` shuts it
down and removes the directory. PostgreSQL refuses to run as root, so under root every server
command runs as the ``postgres`` user the Debian package creates (``runuser -u postgres --``).

The server is tuned for throwaway data (no fsync), which keeps initdb + start under a second.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SERVER_USER = "postgres"  # the Debian package's system user; also the superuser initdb creates
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries (or no user to run them as): the caller should skip."""


def find_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None when PostgreSQL is not installed."""
    on_path = shutil.which("initdb")
    if on_path:
        bindir = Path(on_path).resolve().parent
        if (bindir / "pg_ctl").exists():
            return bindir
    candidates = glob.glob("/usr/lib/postgresql/*/bin/initdb")

    def version(path: str) -> tuple[int, ...]:
        major = Path(path).parent.parent.name
        return tuple(int(p) for p in major.split(".") if p.isdigit())

    for initdb in sorted(candidates, key=version, reverse=True):
        bindir = Path(initdb).parent
        if (bindir / "pg_ctl").exists():
            return bindir
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    def __init__(self, bindir: Path | None = None):
        bindir = bindir or find_bindir()
        if bindir is None:
            raise PostgresUnavailable(
                "PostgreSQL server binaries (initdb, pg_ctl) are neither on PATH nor in "
                "/usr/lib/postgresql/*/bin; install the Debian package 'postgresql' (make system-deps)"
            )
        self.bindir = bindir
        self.as_root = os.geteuid() == 0
        if self.as_root:
            try:
                self._server_uid = pwd.getpwnam(SERVER_USER).pw_uid
            except KeyError:
                raise PostgresUnavailable(
                    f"running as root and there is no {SERVER_USER!r} user to run PostgreSQL as "
                    "(the Debian package 'postgresql' creates it)"
                ) from None
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.tmpdir: Path | None = None

    # -- process control ------------------------------------------------------------------
    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", SERVER_USER, "--", *cmd]
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        return subprocess.run(
            cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
        )

    def _check(self, proc: subprocess.CompletedProcess, what: str) -> None:
        if proc.returncode != 0:
            log = self._log_tail()
            raise RuntimeError(
                f"{what} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
                + (f"\nserver log:\n{log}" if log else "")
            )

    def _log_tail(self, lines: int = 30) -> str:
        if self.tmpdir is None:
            return ""
        try:
            return "\n".join((self.tmpdir / "server.log").read_text().splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def datadir(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "data"

    def start(self, attempts: int = 3) -> None:
        # /tmp rather than $TMPDIR under root: the postgres user must be able to reach the directory
        base = "/tmp" if self.as_root and os.path.isdir("/tmp") else None
        self.tmpdir = Path(tempfile.mkdtemp(prefix="gridfee-pg-", dir=base))
        try:
            if self.as_root:
                os.chown(self.tmpdir, self._server_uid, -1)
            self._check(
                self._run(
                    "initdb",
                    "-D",
                    str(self.datadir),
                    "-U",
                    SERVER_USER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ),
                "initdb",
            )
            for attempt in range(attempts):
                # the port may be taken between free_port() and the server's bind: try another one
                self.port = free_port()
                options = (
                    f"-p {self.port} -k {self.tmpdir} -c listen_addresses={self.host} "
                    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                )
                proc = self._run(
                    "pg_ctl",
                    "-D",
                    str(self.datadir),
                    "-o",
                    options,
                    "-l",
                    str(self.tmpdir / "server.log"),
                    "-w",
                    "-t",
                    "30",
                    "start",
                )
                if proc.returncode == 0:
                    return
                if attempt == attempts - 1:
                    self._check(proc, "pg_ctl start")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.tmpdir is None:
            return
        try:
            if (self.datadir / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    # -- databases ------------------------------------------------------------------------
    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SERVER_USER}@{self.host}:{self.port}/{database}"

    def admin_connection(self):
        import psycopg

        return psycopg.connect(
            host=self.host, port=self.port, user=SERVER_USER, dbname="postgres", autocommit=True
        )

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its SQLAlchemy URL."""
        if not _NAME.match(name):
            raise ValueError(f"not a plain database name: {name!r}")
        with self.admin_connection() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database ``name``, ending any session still connected to it."""
        if not _NAME.match(name):
            raise ValueError(f"not a plain database name: {name!r}")
        with self.admin_connection() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
