"""Outside demo mode a missing ``SECRET_KEY`` stops every process with one clear line.

The web process (importing ``app.wsgi``, and the Procfile's real ``web:`` gunicorn command) and
the clock (``python -m app.runner``) exit non-zero with the reason on stderr, not a traceback;
an unmigrated database stops them the same way.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from deploy_procs import process_env, procfile
from pg_server import free_port

from app.config import ROOT

MESSAGE = "SECRET_KEY must be set when DEMO is off"


def run(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
    )


def assert_refused(proc: subprocess.CompletedProcess, message: str = MESSAGE) -> None:
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr


def test_dep001_clock_refuses_without_secret_key(tmp_path: Path):
    proc = run([sys.executable, "-m", "app.runner"], process_env(DEMO="off", INSTANCE_DIR=str(tmp_path)))
    assert_refused(proc)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0  # one line
    assert not list(tmp_path.iterdir())  # nothing created, nothing migrated


def test_dep002_wsgi_import_refuses_without_secret_key(tmp_path: Path):
    proc = run([sys.executable, "-c", "import app.wsgi"], process_env(DEMO="off", INSTANCE_DIR=str(tmp_path)))
    assert_refused(proc)
    assert proc.returncode == 4  # gunicorn's "App failed to load": its master stops
    assert proc.stderr.strip().count("\n") == 0


def web(env: dict[str, str]) -> subprocess.CompletedProcess:
    """The real ``web:`` command of the Procfile, with 3 workers."""
    env = {**env, "PORT": str(free_port()), "WEB_CONCURRENCY": "3"}
    return run(["bash", "-c", f"exec {procfile()['web']}"], env, timeout=60)


def test_dep003_procfile_web_refuses_without_secret_key(tmp_path: Path):
    """gunicorn's master stops before any worker boots, and says why in one line."""
    proc = web(process_env(DEMO="off", INSTANCE_DIR=str(tmp_path)))
    assert_refused(proc)
    assert proc.returncode == 4
    assert "Booting worker" not in proc.stderr


def test_dep004_unmigrated_database_is_refused_not_migrated(tmp_path: Path):
    env = process_env(SECRET_KEY="k", INSTANCE_DIR=str(tmp_path), DEMO="off")
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    for args in ([sys.executable, "-m", "app.runner"], [sys.executable, "-c", "import app.wsgi"]):
        assert_refused(run(args, env), "run 'alembic upgrade head'")
    assert_refused(web(env), "run 'alembic upgrade head'")
    with closing(sqlite3.connect(tmp_path / "fresh.sqlite3")) as db:  # nothing migrated it
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == []
