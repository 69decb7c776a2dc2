"""One secret for every worker: the Procfile's gunicorn with 3 workers in demo mode, no SECRET_KEY.

The finding: each worker drew its own random secret, so a token (or a console session) worked on
one worker in three (``[401, 401, 200, ...]``). Now the first worker generates the secret into
the store and the others read it. Every request below opens a new connection, which gunicorn's
master hands to whichever worker accepts it first; with several tokens, each used several times,
a worker with another secret would refuse some of them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import requests
from deploy_procs import Procs, answers, process_env, procfile, wait_until
from pg_server import free_port

TOKENS = 6
USES = 6


def test_dep060_one_token_and_one_session_work_on_every_worker_in_demo_mode(procs: Procs, tmp_path: Path):
    port = free_port()
    env = process_env(
        PORT=str(port), WEB_CONCURRENCY="3", WEB_THREADS="4", INSTANCE_DIR=str(tmp_path), DEMO="on"
    )
    assert "SECRET_KEY" not in env
    commands = procfile()
    procs.release(env)
    procs.start("web", commands["web"], env)
    base = f"http://127.0.0.1:{port}"

    wait_until("gunicorn to answer", lambda: answers(base), 90, procs, every=0.1)
    wait_until("3 workers booted", lambda: procs.started[-1].output().count("Booting worker") >= 3, 60, procs)

    codes = []
    for _ in range(TOKENS):
        answer = requests.post(
            f"{base}/api/v1/auth/token", json={"username": "viewer", "password": "viewer"}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        headers = {"Authorization": f"Bearer {answer.json()['access_token']}", "Connection": "close"}
        codes += [
            requests.get(f"{base}/api/v1/grid", headers=headers, timeout=10).status_code for _ in range(USES)
        ]
    assert codes == [200] * (TOKENS * USES), codes

    # a console session (and its CSRF token) signed by one worker is good on every other
    browser = requests.Session()
    page = browser.get(f"{base}/login", timeout=10).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = {"csrf_token": csrf, "next": "/", "username": "viewer", "password": "viewer"}
    signed = browser.post(
        f"{base}/login", data=form, allow_redirects=False, timeout=10, headers={"Connection": "close"}
    )
    assert signed.status_code == 302, signed.text[:300]
    pages = [
        browser.get(
            f"{base}/", allow_redirects=False, timeout=10, headers={"Connection": "close"}
        ).status_code
        for _ in range(TOKENS * USES)
    ]
    assert pages == [200] * (TOKENS * USES), pages

    # gunicorn's own answer to a header too large (the app never sees it): JSON, not HTML
    from test_attacks import raw_request

    status, headers, body = raw_request(port, "/api/v1/grid", 100_000)
    assert status == 431 and headers["Content-Type"] == "application/json", (headers, body[:200])
    assert json.loads(body)["error"] == "request_header_fields_too_large"
