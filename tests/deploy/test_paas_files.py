"""The PaaS files agree with the code: Procfile process types, app.json's settings, the runtime."""

from __future__ import annotations

import json
import re

from deploy_procs import procfile

from app.config import PROCFILE_SETTINGS, ROOT, SETTING_NAMES

# app.json describes every setting but three a PaaS deployer leaves alone (the instance folder is
# the dyno's, the token lifetime and the batch size are the code's own)
SETTINGS = SETTING_NAMES - {"INSTANCE_DIR", "TOKEN_TTL_S", "MAX_BATCH_COMMANDS"}


def test_dep040_procfile_process_types():
    entries = procfile()
    assert set(entries) == {"web", "clock", "worker", "release"}
    assert entries["web"].startswith("gunicorn app.entry.wsgi:server ")
    assert "${WEB_CONCURRENCY" in entries["web"] and "0.0.0.0:${PORT" in entries["web"]
    assert entries["clock"] == "python -m app.entry.clock"
    assert entries["release"] == "alembic upgrade head"


def test_dep041_app_json_describes_every_setting():
    app = json.loads((ROOT / "app.json").read_text(encoding="utf-8"))
    assert set(app["env"]) == SETTINGS
    assert all(spec.get("description") for spec in app["env"].values())
    assert app["env"]["SECRET_KEY"]["generator"] == "secret"
    assert set(app["formation"]) == {"web", "clock", "worker"}
    config = (ROOT / "app" / "config.py").read_text(encoding="utf-8")
    read = set(re.findall(r'env\.get\("([A-Z_]+)"\)', config))
    # WEB_CONCURRENCY is gunicorn's, WHATIF_CONCURRENCY celery's (both on their Procfile lines)
    assert SETTINGS - PROCFILE_SETTINGS <= read
    # what test and bench processes clear from their environment is every setting there is
    assert SETTING_NAMES == read | PROCFILE_SETTINGS


def test_dep042_runtime_and_pins():
    version = (ROOT / ".python-version").read_text(encoding="utf-8").strip()
    assert version == "3.11"  # pyproject: requires-python >= 3.11
    pins = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert re.search(r"^gunicorn==\d", pins, re.M) and re.search(r"^redis==\d", pins, re.M)
