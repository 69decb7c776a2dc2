"""Outside demo mode a missing ``SECRET_KEY`` or ``USERS_FILE`` stops every process with one clear line.

The web process (importing ``app.entry.wsgi``, and the Procfile's real ``web:`` gunicorn command), the
clock (``python -m app.entry.clock``) and the processes started by hand (``python -m app``, ``python
-m app.exchange``) exit non-zero with the reason on stderr, not a traceback, before they create
or migrate anything; a users file without users stops them the same way, and an unmigrated
database stops the Procfile's processes.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
import yaml
from deploy_procs import process_env, procfile
from pg_server import free_port
from werkzeug.security import generate_password_hash

from app.config import ROOT

MESSAGE = "SECRET_KEY must be set when DEMO is off"
NO_USERS = "no users when DEMO is off"


def run(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
    )


def assert_refused(proc: subprocess.CompletedProcess, message: str = MESSAGE) -> None:
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr


def test_dep001_clock_refuses_without_secret_key(tmp_path: Path):
    proc = run([sys.executable, "-m", "app.entry.clock"], process_env(DEMO="off", INSTANCE_DIR=str(tmp_path)))
    assert_refused(proc)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0  # one line
    assert not list(tmp_path.iterdir())  # nothing created, nothing migrated


def test_dep002_wsgi_import_refuses_without_secret_key(tmp_path: Path):
    proc = run(
        [sys.executable, "-c", "import app.entry.wsgi"], process_env(DEMO="off", INSTANCE_DIR=str(tmp_path))
    )
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


def users_file(path: Path, users: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"users": users}), encoding="utf-8")
    return path


ALICE = {"username": "alice", "password_hash": generate_password_hash("pw"), "role": "grid_operator"}


def test_dep004_unmigrated_database_is_refused_not_migrated(tmp_path: Path):
    users = users_file(tmp_path / "users.yaml", [ALICE])
    env = process_env(SECRET_KEY="k", INSTANCE_DIR=str(tmp_path), DEMO="off", USERS_FILE=str(users))
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    for args in ([sys.executable, "-m", "app.entry.clock"], [sys.executable, "-c", "import app.entry.wsgi"]):
        assert_refused(run(args, env), "run 'alembic upgrade head'")
    assert_refused(web(env), "run 'alembic upgrade head'")
    with closing(sqlite3.connect(tmp_path / "fresh.sqlite3")) as db:  # nothing migrated it
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == []


# every process that starts from the environment: (command, exit status when it refuses)
STARTS = {
    "clock": ([sys.executable, "-m", "app.entry.clock"], 2),
    "wsgi": ([sys.executable, "-c", "import app.entry.wsgi"], 4),
    "local": ([sys.executable, "-m", "app"], 2),
    "exchange": ([sys.executable, "-m", "app.entry.exchange", "--port", "0"], 2),
}


def assert_every_process_refuses(env: dict[str, str], message: str, instance: Path) -> None:
    before = sorted(instance.iterdir())
    for name, (args, status) in STARTS.items():
        # a process that does not refuse serves on, and run() times out: the test fails then too
        proc = run(args, {**env, "PORT": str(free_port())}, timeout=60)
        assert_refused(proc, message)
        assert proc.returncode == status, name
        assert proc.stderr.strip().count("\n") == 0, name  # one line
    proc = web(env)  # gunicorn's master stops before any worker boots
    assert_refused(proc, message)
    assert proc.returncode == 4
    assert "Booting worker" not in proc.stderr
    assert sorted(instance.iterdir()) == before  # no database created or migrated


def test_dep005_no_users_outside_demo_mode_refuses_every_process(tmp_path: Path):
    instance = tmp_path / "instance"
    instance.mkdir()
    env = process_env(DEMO="off", SECRET_KEY="k", INSTANCE_DIR=str(instance))
    assert_every_process_refuses(env, NO_USERS, instance)


@pytest.mark.parametrize("content", ["users: []\n", "users: [{username: bob}]\n"], ids=["empty", "bad"])
def test_dep006_users_file_without_usable_users_refuses(tmp_path: Path, content: str):
    instance = tmp_path / "instance"
    instance.mkdir()
    users = tmp_path / "users.yaml"
    users.write_text(content, encoding="utf-8")
    env = process_env(DEMO="off", SECRET_KEY="k", INSTANCE_DIR=str(instance), USERS_FILE=str(users))
    assert_every_process_refuses(env, f"users file {users}", instance)


def test_dep007_local_processes_refuse_without_secret_key(tmp_path: Path):
    """``python -m app`` and ``python -m app.entry.exchange`` say why, like the Procfile's processes."""
    users = users_file(tmp_path / "users.yaml", [ALICE])
    env = process_env(DEMO="off", INSTANCE_DIR=str(tmp_path), USERS_FILE=str(users), PORT=str(free_port()))
    for name in ("local", "exchange"):
        args, status = STARTS[name]
        proc = run(args, env)
        assert_refused(proc)
        assert proc.returncode == status
    assert sorted(tmp_path.iterdir()) == [users]
