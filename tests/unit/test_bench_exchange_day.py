"""The exchange-day benchmark runs the runner with its store end to end at 100 houses and ends
with its JSON line."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_exchange_day_prints_json_for_100_houses():
    proc = subprocess.run(
        [sys.executable, "bench/exchange_day.py", "--houses", "100", "--store", "sqlite", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["day_seconds"]["100"] > 0
    assert result["peak_rss_mb"]["100"] > 0
    assert result["store"] == "sqlite"
    assert result["core_day_seconds"]["100"] > 0
