"""Latency of batch commands: dso_market_stats for 10, 100 and 500 markets, grid_fees for 500.

    .venv/bin/python bench/api_batch.py [--requests 200] [--days 3] [--paths service,in-process,http]
                                        [--json]

Three paths, on a generated grid of 511 markets (10 communities x 50 houses) with ``--days``
days of history (run by the real runner) in a SQLite store under a temporary folder:

* **service**: ``ExchangeService.run_batch`` called directly (what a worker does per request);
* **in-process**: ``GridOperatorClient.embedded`` (requests + the WSGI transport, no socket),
  the path the embedded console uses;
* **http**: ``GridOperatorClient`` over loopback HTTP to a threaded werkzeug server.

Each stats request asks for one slot of the history (``market_slots``), a different one each
time, drawn with a fixed seed from every closed slot, so no request finds what the one before it
read. Each figure is the p50 / p95 of ``--requests`` requests after 10 warm-up requests, in wall
time and in the CPU time of the sending thread (``*_cpu_ms``; the whole request on the service
and in-process paths, the client's share over HTTP): on a shared machine the CPU figure is the
one other processes sway less.
Target (issue 18): p95 <= 25 ms for dso_market_stats of 500 markets in-process. With
``--json`` the last line is one JSON object: ``{"<path>": {"<case>": {"p50_ms": x, "p95_ms": y}}}``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES = (("dso_market_stats", 10), ("dso_market_stats", 100), ("dso_market_stats", 500), ("grid_fees", 500))


def build(tmp: Path, days: int):
    from app.config import Settings
    from app.entry.web import create_app
    from app.exchange.generate import generate_scenario
    from app.exchange.grid import build_grid
    from app.exchange.runner import ExchangeRunner
    from app.store.repo import ExchangeStore

    scenario = generate_scenario(10, 50, seed=3)
    store = ExchangeStore.open(f"sqlite:///{tmp / 'bench.sqlite3'}", scenario, build_grid(scenario))
    ExchangeRunner(store, 0).run(max_slots=96 * days)
    settings = Settings.from_env({"INSTANCE_DIR": str(tmp), "SECRET_KEY": "bench", "SLOT_SECONDS": "0"})
    return store, create_app(settings, store=store)


def batch(uuids: list[str], kind: str, n: int, i: int, slot: str) -> dict:
    if kind == "grid_fees":
        return {u: [{"type": "grid_fees", "data": {"fee_const": 1 + (i % 7) * 0.5}}] for u in uuids[:n]}
    return {u: [{"type": kind, "data": {"market_slots": slot}}] for u in uuids[:n]}


def measure(send, uuids: list[str], requests: int, labels: list[str]) -> dict:
    out = {}
    pick = random.Random(18)
    for kind, n in CASES:
        for i in range(10):
            send(batch(uuids, kind, n, i, pick.choice(labels)))
        times, cpu = [], []
        for i in range(requests):
            body = batch(uuids, kind, n, i, pick.choice(labels))
            t0, c0 = time.perf_counter(), time.thread_time()
            send(body)
            cpu.append((time.thread_time() - c0) * 1000)
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        cpu.sort()
        out[f"{kind}_{n}"] = {
            "p50_ms": round(statistics.median(times), 2),
            "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
            "p50_cpu_ms": round(statistics.median(cpu), 2),
            "p95_cpu_ms": round(cpu[int(0.95 * (len(cpu) - 1))], 2),
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--days", type=int, default=3, help="days of history in the store")
    parser.add_argument("--paths", default="service,in-process,http", help="which paths to measure")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    from app.client import GridOperatorClient

    with tempfile.TemporaryDirectory() as tmp:
        store, server_app = build(Path(tmp), args.days)
        from app.entry.web import settle_heap

        settle_heap()  # as the servers do once built (app.entry: wsgi, serve, clock)
        uuids = [m.uuid for m in store.grid.markets]
        service = server_app.extensions["gridfee"].service
        labels = [service.clock.label(s) for s in store.closed_slots()]
        user = server_app.extensions["gridfee"].users.users["operator"]
        paths = args.paths.split(",")
        results = {}
        if "service" in paths:
            run = lambda b: service.run_batch(user, b, None, "bench")  # noqa: E731
            results["service"] = measure(run, uuids, args.requests, labels)
        if "in-process" in paths:
            embedded = GridOperatorClient.embedded(server_app, "operator", "operator")
            results["in-process"] = measure(embedded.batch_command, uuids, args.requests, labels)
        if "http" in paths:
            http = make_server("127.0.0.1", 0, server_app, threaded=True)
            thread = threading.Thread(target=http.serve_forever, daemon=True)
            thread.start()
            try:
                client = GridOperatorClient(f"http://127.0.0.1:{http.server_port}", "operator", "operator")
                results["http"] = measure(client.batch_command, uuids, args.requests, labels)
            finally:
                http.shutdown()
        store.engine.dispose()

    print(f"{'path':<12}{'case':<24}{'p50 ms':>10}{'p95 ms':>10}{'p50 CPU ms':>12}{'p95 CPU ms':>12}")
    for path, cases in results.items():
        for case, f in cases.items():
            print(
                f"{path:<12}{case:<24}{f['p50_ms']:>10.2f}{f['p95_ms']:>10.2f}"
                f"{f['p50_cpu_ms']:>12.2f}{f['p95_cpu_ms']:>12.2f}"
            )
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
