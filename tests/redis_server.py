"""A throwaway Redis server for the test session (Debian's ``redis-server`` package).

``RedisServer.start()`` runs ``redis-server`` on a free loopback port with persistence off
(``--save '' --appendonly no``) and its working directory in a fresh temporary directory, and
waits until it answers PING; ``stop()`` ends it and removes the directory. ``make test``
installs the package (``make system-deps``); without it the tests that need Redis skip.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ending import end_process
from pg_server import free_port


class RedisUnavailable(RuntimeError):
    """No ``redis-server`` binary: the caller should skip."""


def ping(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    def __init__(self, binary: str | None = None):
        binary = binary or shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            raise RedisUnavailable(
                "redis-server is not installed; install the Debian package 'redis-server' (make system-deps)"
            )
        self.binary = binary
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.tmpdir: Path | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self, attempts: int = 3, timeout: float = 15.0) -> None:
        self.tmpdir = Path(tempfile.mkdtemp(prefix="gridfee-redis-"))
        try:
            for attempt in range(attempts):
                # the port may be taken between free_port() and the server's bind: try another one
                self.port = free_port()
                self.proc = subprocess.Popen(
                    [
                        self.binary,
                        "--port",
                        str(self.port),
                        "--bind",
                        self.host,
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(self.tmpdir),
                        "--logfile",
                        str(self.tmpdir / "redis.log"),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline and self.proc.poll() is None:
                    if ping(self.host, self.port):
                        return
                    time.sleep(0.05)
                self._end_process()
                if attempt == attempts - 1:
                    raise RuntimeError(f"redis-server did not start:\n{self._log_tail()}")
        except BaseException:
            self.stop()
            raise

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self.tmpdir / "redis.log").read_text().splitlines()[-lines:])
        except (OSError, TypeError):
            return ""

    def _end_process(self) -> None:
        if self.proc is None:
            return
        end_process(self.proc)
        self.proc = None

    def stop(self) -> None:
        try:
            self._end_process()
        finally:
            if self.tmpdir is not None:
                shutil.rmtree(self.tmpdir, ignore_errors=True)
                self.tmpdir = None
