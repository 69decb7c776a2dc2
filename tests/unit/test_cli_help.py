"""Every command-line tool answers ``--help`` with its usage and exits 0, starting nothing."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "module", ["app", "app.entry.exchange", "app.entry.run", "app.entry.clock", "app.exchange.generate"]
)
def test_cli_help_prints_usage_and_exits(module: str, tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "INSTANCE_DIR": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage:"), proc.stdout
    assert list(tmp_path.iterdir()) == []  # no store was made: nothing started
