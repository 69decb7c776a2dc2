"""Ending a server process that a test started."""

from __future__ import annotations

import subprocess


def end_process(proc: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM ``proc`` if it still runs, and SIGKILL it when it has not ended after ``timeout`` s."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
