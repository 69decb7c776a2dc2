"""The example strategies run against the embedded exchange and their fees are accepted."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("examples")
    port = free_port()
    env = {
        **os.environ,
        "SLOT_SECONDS": "0.3",
        "INSTANCE_DIR": str(tmp),
        "DATABASE_URL": f"sqlite:///{tmp / 'ex.sqlite3'}",
        "SECRET_KEY": "examples",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.entry.exchange", "--port", str(port), "--quiet"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/api/v1/openapi.json", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.2)
    yield url, tmp / "ex.sqlite3"
    proc.terminate()
    proc.wait(timeout=30)


def fees_sent(db: Path) -> list[float]:
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT fee_ct_per_kwh FROM fee_changes ORDER BY id")).scalars().all()
    engine.dispose()
    return rows


@pytest.mark.parametrize(
    ("script", "expected_fees"),
    [
        ("constant_fee.py", {1.0, 2.0}),
        ("time_of_use.py", {0.42, 0.44, 0.46, 1.68, 1.76, 1.84}),  # the table's first rows
        ("peak_tiers.py", {0.9, 2.1, 3.0, 3.9, 6.0, 30.0}),
    ],
)
def test_example_strategy_runs_and_its_fees_are_accepted(exchange, script, expected_fees):
    url, db = exchange
    before = len(fees_sent(db))
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), "--url", url, "--cycles", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    new = fees_sent(db)[before:]
    assert len(new) >= 2 * 4  # two cycles, grid + three communities
    assert set(new) <= expected_fees, set(new) - expected_fees
