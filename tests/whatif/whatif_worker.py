"""The Procfile's what-if worker as a test process: its command and environment (see
``conftest.celery_worker``)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from app.config import Settings


@dataclass
class Worker:
    proc: subprocess.Popen
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment of a worker process for the console of ``settings``."""
    return {
        **os.environ,
        "INSTANCE_DIR": str(settings.instance_dir),
        "SECRET_KEY": settings.secret_key,
        "SLOT_SECONDS": "0",
        "SCENARIO": str(settings.scenario),
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url or "",
        "PYTHONUNBUFFERED": "1",
    }


def worker_command(concurrency: int = 1) -> list[str]:
    """The Procfile's worker command (``celery`` of this interpreter)."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "app.entry.worker:celery_app",
        "worker",
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
    ]
