"""The console's loop against a real gsy-e over Redis: how long each step takes.

    GSY_E_PYTHON=/work/gsy-e-inst/venv/bin/python .venv/bin/python bench/gsy_e_loop.py \
        [--slot-realtime 3s] [--duration 2h] [--json]

Starts ``redis-server`` on a free port and gsy-e (``scripts/install_gsy_e.sh``; the setup of
``tests/gsy_remote/gsye_setup/gso_community.py``, started paused), runs the console's operator
agent on the gsy link with a SQLite store in a temporary folder, resumes gsy-e and lets it run
to its end. Figures:

* **connect**: link start -> both markets held (CREATE, area map, register, SELECT) [s];
* **batch**: round trip of every batch the agent sent (``dso_market_stats`` each slot, the
  queued ``grid_fees``), p50 / p95 / max [ms] (gsy-e answers at its next tick);
* **slots stored** (of the grid market), the wall time per slot the link estimated from gsy-e's
  events (``slot_seconds``) [s], whether ``finish`` arrived, and the outcome of one fee queued
  after the first stored slot.

With ``--json`` the last line is one JSON object of the same figures.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import print_report  # noqa: E402 - after the path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slot-realtime", default="3s")
    parser.add_argument("--duration", default="2h")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    python = os.environ.get("GSY_E_PYTHON")
    if not python or not Path(python).exists():
        print("GSY_E_PYTHON must name the python of scripts/install_gsy_e.sh's venv", file=sys.stderr)
        return 2

    import redis

    from app.client.factory import make_client
    from app.client.gsy import GsyLinkStore
    from app.config import Settings, without_settings
    from app.operator.agent import OperatorAgent
    from app.operator.store import OperatorStore
    from app.store.db import make_engine, migrate

    tmp = Path(tempfile.mkdtemp(prefix="gsy-e-bench-"))
    port = free_port()
    procs = [
        subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
    ]
    try:
        time.sleep(0.5)
        env = {**without_settings(os.environ), "REDIS_URL": f"redis://127.0.0.1:{port}"}
        log = tmp / "gsye.log"
        with open(log, "wb") as out:
            setup = str(ROOT / "tests/gsy_remote/gsye_setup/run_gsye.py")
            gsye = subprocess.Popen(
                [python, setup, "run", "--setup", "gso_community", "--duration", args.duration,
                 "--slot-length", "15m", "--tick-length", "15s", "--slot-length-realtime", args.slot_realtime,
                 "--start-date", "2024-06-21", "-m", "2", "--seed", "0", "--enable-external-connection",
                 "--paused", "--no-export"],
                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=tmp,
            )  # fmt: skip
        procs.append(gsye)
        while "Simulation paused" not in log.read_text(errors="replace"):
            if gsye.poll() is not None:
                print(log.read_text()[-2000:], file=sys.stderr)
                return 1
            time.sleep(0.1)

        url = f"gsy+redis://127.0.0.1:{port}"
        settings = Settings.from_env({"INSTANCE_DIR": str(tmp), "GRID_API_URL": url, "SECRET_KEY": "bench"})
        migrate(settings.database_url)
        engine = make_engine(settings.database_url)
        store = OperatorStore(engine, settings.exchange_key)
        agent = make_client(settings, None, cls=OperatorAgent, engine=engine, store=store, start_after=None)
        agent.long_poll_s = 0.5
        trips: list[float] = []
        send = agent.batch_command

        def timed(batch, transaction_id=None):
            t0 = time.perf_counter()
            try:
                return send(batch, transaction_id)
            finally:
                trips.append(time.perf_counter() - t0)

        agent.batch_command = timed
        stop = threading.Event()
        t0 = time.perf_counter()
        thread = threading.Thread(target=agent.run_forever, args=(stop,), daemon=True)
        thread.start()
        links = GsyLinkStore(engine, settings.exchange_key)
        while len((links.load()[1] or {}).get("held") or {}) < 2:
            time.sleep(0.01)
        connect_s = time.perf_counter() - t0
        held = {v: k for k, v in links.load()[1]["held"].items()}
        client = redis.Redis(port=port)
        client.publish("/resume", json.dumps({"transaction_id": str(uuid.uuid4())}))
        while store.latest_slot() is None:
            time.sleep(0.05)
        store.queue(held["Community"], "Community", 6.0, source="manual:bench", user="bench")
        gsye.wait(timeout=3600)
        time.sleep(1.0)
        stop.set()
        thread.join(10)
        state = links.load()[1]
        ms = sorted(t * 1000 for t in trips)
        figures = {
            "connect_s": round(connect_s, 3),
            "batches": len(ms),
            "batch_p50_ms": round(statistics.median(ms), 1),
            "batch_p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1),
            "batch_max_ms": round(ms[-1], 1),
            "slots_stored": len(store.slots(held["Grid"])),
            "slot_seconds_estimated": state.get("slot_seconds"),
            "finished": bool(state.get("finished")),
            "fee_applied": [c["status"] for c in store.commands()],
        }
        client.close()
        engine.dispose()
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=15)
    return print_report(("figure", "value"), list(figures.items()), figures, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
