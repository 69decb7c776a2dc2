"""The runner lock: exactly one process runs the exchange per store, and its death frees it.

PostgreSQL: a session-level advisory lock held on a connection of its own (the server drops it
when that connection dies). SQLite: ``flock`` on a file beside the database (the kernel drops it
when the process dies). Neither needs a heartbeat or a timeout to be taken over.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from pathlib import Path

from sqlalchemy import Engine, text


class RunnerLock:
    def __init__(self, engine: Engine, name: str):
        self.engine = engine
        self.name = name
        self._conn = None
        self._fd: int | None = None
        self.key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)

    def _lock_path(self) -> Path | None:
        database = self.engine.url.database
        if not database or database == ":memory:":
            return None
        return Path(f"{database}.{hashlib.sha1(self.name.encode()).hexdigest()[:12]}.runner.lock")

    def try_acquire(self) -> bool:
        if self.held:
            return True
        if self.engine.dialect.name == "postgresql":
            conn = self.engine.connect()
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
            conn.commit()
            if got:
                self._conn = conn
                return True
            conn.close()
            return False
        path = self._lock_path()
        if path is None:  # an in-memory database lives in one process only
            self._fd = -1
            return True
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True

    def acquire(self, timeout: float | None = None, poll: float = 0.5) -> bool:
        """Wait for the lock (forever when ``timeout`` is None); True once held."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.try_acquire():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(poll)
        return True

    def holder(self) -> str | None:
        """Who holds the lock, for logs: "pid N" (SQLite: the pid in the lock file; PostgreSQL:
        the server process of the holding session), or None when unknown or free."""
        if self.engine.dialect.name == "postgresql":
            unsigned = self.key & 0xFFFFFFFFFFFFFFFF  # a bigint advisory key is (classid, objid)
            query = text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid = :hi AND objid = :lo AND objsubid = 1"
            )
            with self.engine.connect() as conn:
                pid = conn.execute(query, {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF}).scalar()
            return None if pid is None else f"PostgreSQL session pid {pid}"
        path = self._lock_path()
        try:
            pid = path.read_text().strip() if path is not None else ""
        except OSError:
            return None
        return f"pid {pid}" if pid else None

    @property
    def held(self) -> bool:
        return self._conn is not None or self._fd is not None

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self._conn.commit()
            finally:
                self._conn.close()
                self._conn = None
        if self._fd is not None:
            if self._fd >= 0:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
            self._fd = None
