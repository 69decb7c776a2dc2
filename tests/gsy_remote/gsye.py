"""Helpers of the gsy-e tests: a real gsy-e process, its trade log, and a wire recorder.

gsy-e is installed by ``scripts/install_gsy_e.sh`` into a venv of its own (its pins differ from
ours); ``GSY_E_PYTHON`` names that venv's python. The setup module (``gsye_setup/``) is the one
of ``shared/reference/gsy-live-loop.md`` §3.1: Grid (fee 1 ct/kWh) -> Market Maker + Community
(fee 4) -> 3 houses, Grid and Community open for an external connection.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import redis

from app.config import without_settings

GSY_E_PYTHON = os.environ.get("GSY_E_PYTHON", "")
SETUP_DIR = Path(__file__).resolve().parent / "gsye_setup"
SKIP_REASON = (
    "gsy-e is not installed here: run scripts/install_gsy_e.sh (from local copies of gsy-e and "
    "gsy-framework) and set GSY_E_PYTHON to its venv's python"
)
TRADE = re.compile(
    r"\[TRADE\]\[\w+\] \[(?P<market>[^\]]+)\] \[(?P<slot>\d{4}-\d\d-\d\d \d\d:\d\d):00[^\]]*\].*? "
    r"(?P<energy>[0-9.]+) kWh @ .*\[fee: (?P<fee>[0-9.e-]+) cts\.\]"
)


def gsy_e_available() -> bool:
    return bool(GSY_E_PYTHON) and Path(GSY_E_PYTHON).exists()


class GsyE:
    """``run_gsye.py run --setup gso_community ... --paused`` with Redis at ``redis_url``."""

    def __init__(self, redis_url: str, workdir: Path, slot_realtime: str = "4s", duration: str = "2h"):
        self.redis_url = redis_url.rsplit("/", 1)[0] if redis_url.count("/") > 2 else redis_url
        self.workdir = workdir
        self.log_path = workdir / "gsye.log"
        self.args = [
            GSY_E_PYTHON, str(SETUP_DIR / "run_gsye.py"), "-l", "INFO", "run", "--setup", "gso_community",
            "--duration", duration, "--slot-length", "15m", "--tick-length", "15s",
            "--slot-length-realtime", slot_realtime, "--start-date", "2024-06-21", "-m", "2", "--seed", "0",
            "--enable-external-connection", "--paused", "--no-export",
        ]  # fmt: skip
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> None:
        env = {**without_settings(os.environ), "REDIS_URL": self.redis_url}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.args,
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "Simulation paused" in self.log():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"gsy-e exited early:\n{self.log()[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"gsy-e did not pause within {timeout} s:\n{self.log()[-3000:]}")

    def resume(self) -> None:
        client = redis.Redis.from_url(self.redis_url)
        try:
            client.publish("/resume", json.dumps({"transaction_id": str(uuid.uuid4())}))
        finally:
            client.close()

    def log(self) -> str:
        try:
            return re.sub(r"\x1b\[[0-9;]*m", "", self.log_path.read_text(errors="replace"))
        except OSError:
            return ""

    def fees_charged(self, market: str) -> dict[str, set[float]]:
        """The fee per kWh gsy-e charged on each trade in ``market``, by slot label (from its
        INFO trade lines: ``[fee: X cts.]`` for the trade's energy)."""
        out: dict[str, set[float]] = {}
        for found in TRADE.finditer(self.log()):
            if found["market"] != market or float(found["energy"]) <= 0:
                continue
            label = found["slot"].replace(" ", "T")
            out.setdefault(label, set()).add(round(float(found["fee"]) / float(found["energy"]), 6))
        return out

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # gsy-e ignores SIGINT while it runs
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class WireRecorder:
    """Every pub/sub message on a Redis server (``psubscribe('*')``), with when it came."""

    def __init__(self, redis_url: str):
        self.client = redis.Redis.from_url(redis_url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.psubscribe("*")
        self.messages: list[dict] = []
        self._stop = threading.Event()
        self._t0 = time.time()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self.pubsub.get_message(timeout=0.2)
            if message and message.get("type") == "pmessage":
                try:
                    data = json.loads(message["data"])
                except ValueError:
                    continue
                channel = message["channel"].decode()
                self.messages.append(
                    {"t": round(time.time() - self._t0, 3), "channel": channel, "data": data}
                )

    def stop(self) -> list[dict]:
        self._stop.set()
        self._thread.join(5)
        self.pubsub.close()
        self.client.close()
        return self.messages
