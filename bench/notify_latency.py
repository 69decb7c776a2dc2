"""Delay from a slot's close to its readers, polling (before) against notification (after).

    .venv/bin/python bench/notify_latency.py [--slots 30] [--backends sqlite,postgresql,redis] [--json]

For each deployment (``sqlite``: a SQLite store; ``postgresql``: a throwaway PostgreSQL server
started as the tests start it; ``redis``: a SQLite store with a throwaway redis-server as
``REDIS_URL``) and each mode:

* **before**: the readers poll the store as the code did before ``app.store.notify``:
  ``market_cycles`` every 0.1 s, each SDK websocket every 0.2 s (the polling backend with those
  intervals, which is the same loop: read, sleep, read again);
* **after**: ``Notifier.for_store`` of the deployment: LISTEN/NOTIFY on PostgreSQL, Redis pub/sub
  with ``REDIS_URL``, polling (every 0.1 s, sockets included) on SQLite alone.

The runner closes ``--slots`` slots of a 2 x 3-house grid through a store object of its own (the
clock process), 0.05-0.45 s apart (so that a poll's phase is random). Two readers wait in the web
server's process: a ``market_cycles`` long poll (``ExchangeService.market_cycles``, wait 30 s)
and an SDK client's aggregator websocket (``websockets``' client over loopback to a threaded
werkzeug server). The delay of a slot is from the moment the runner's store transaction (and its
notification) returned to the moment the reader has the cycle / the websocket client has the
``market`` frame. ``reads/s`` counts the web process's SQL statements per second while both
readers wait and nothing happens (2 s). With ``--json`` the last line is one JSON object:
``{"<backend>": {"<mode>": {"cycles_p50_ms", "cycles_p95_ms", "cycles_max_ms", "socket_p50_ms",
"socket_p95_ms", "socket_max_ms", "idle_reads_per_s"}}}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIM = "5d1c2a4e-0000-4000-8000-00000000be4c"
BEFORE = {"cycles_poll_s": 0.1, "socket_poll_s": 0.2}  # the polling loops this replaced
IDLE_S = 2.0


def measure(url: str, redis_url: str | None, mode: str, slots: int, tmp: Path) -> dict:
    import requests
    from sqlalchemy import event
    from websockets.sync.client import connect
    from werkzeug.serving import make_server

    from app.config import Settings
    from app.entry.web import create_app
    from app.exchange.generate import generate_scenario
    from app.exchange.grid import build_grid
    from app.exchange.runner import ExchangeRunner
    from app.store.notify import Notifier
    from app.store.repo import ExchangeStore

    scenario = generate_scenario(2, 3, seed=1)
    polling = mode == "before"
    clock_store = ExchangeStore.open(
        url, scenario, build_grid(scenario), redis_url=None if polling else redis_url
    )
    runner = ExchangeRunner(clock_store, slot_seconds=0.0)
    runner.resume()
    web_store = ExchangeStore.open(
        url, scenario, build_grid(scenario), redis_url=None if polling else redis_url
    )
    if polling:  # the sockets polled every 0.2 s, market_cycles every 0.1 s
        web_store.events = Notifier("polling", poll_s=BEFORE["socket_poll_s"])
    env = {"INSTANCE_DIR": str(tmp), "SECRET_KEY": "bench", "SLOT_SECONDS": "0", "GSY_SIMULATION_ID": SIM}
    if redis_url and not polling:
        env["REDIS_URL"] = redis_url
    app = create_app(Settings.from_env(env), store=web_store, dashboard=False)
    service = app.extensions["gridfee"].service
    cycles_events = Notifier("polling", poll_s=BEFORE["cycles_poll_s"]) if polling else web_store.events
    http = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{http.server_port}"

    committed: dict[str, float] = {}  # slot label -> when its transaction (and notification) returned
    close_slot = clock_store.close_slot

    def timed_close(slot: int, label: str, *args, **kwargs):
        result = close_slot(slot, label, *args, **kwargs)
        committed[runner.clock.label(slot + 1)] = time.monotonic()  # market_slot of the cycle
        return result

    clock_store.close_slot = timed_close

    def post(path: str, token: str | None, body: dict) -> dict:
        headers = {"Content-Type": "application/json", **({"Authorization": f"JWT {token}"} if token else {})}
        response = requests.post(f"{base}{path}", data=json.dumps(body), headers=headers, timeout=10)
        response.raise_for_status()
        return response.json()

    token = post("/api-token-auth/", None, {"username": "operator", "password": "operator"})["token"]
    prefix = f"/external-connection/aggregator-api/{SIM}/"
    agg = post(f"{prefix}create-aggregator/", token, {"name": "bench", "transaction_id": "c"})["uuid"]
    grid = next(m.uuid for m in web_store.grid.markets if m.level == 0)

    arrived_cycles: dict[str, float] = {}
    arrived_socket: dict[str, float] = {}
    stop = threading.Event()

    def cycles_reader() -> None:
        service.store.events, keep = cycles_events, service.store.events
        after = None
        try:
            while not stop.is_set():
                page = service.market_cycles(after, wait_s=30.0)
                now = time.monotonic()
                for cycle in page["cycles"]:
                    arrived_cycles[cycle["market_slot"]] = now
                after = page["last_market_slot"] or after
        except Exception:
            if not stop.is_set():  # the store goes away at the end: that is no error
                raise
        finally:
            service.store.events = keep

    ws = connect(
        f"ws://127.0.0.1:{http.server_port}/external-ws/{SIM}/aggregator/{agg}/",
        additional_headers={"Authorization": f"JWT {token}"},
    )

    def socket_reader() -> None:
        try:
            for raw in ws:
                message = json.loads(raw)
                if message.get("event") == "market":
                    arrived_socket[message["market_slot"]] = time.monotonic()
        except Exception:  # the socket closes at the end
            pass

    readers = [threading.Thread(target=f, daemon=True) for f in (cycles_reader, socket_reader)]
    with ExitStack() as stack:
        stack.callback(clock_store.engine.dispose)
        stack.callback(web_store.engine.dispose)
        stack.callback(clock_store.events.close)
        stack.callback(web_store.events.close)
        stack.callback(http.shutdown)
        stack.callback(ws.close)
        stack.callback(stop.set)
        runner.close_running_slot()  # a first cycle, so that the long poll waits for the next
        for reader in readers:
            reader.start()
        post(
            f"{prefix}select-aggregator/",
            token,
            {"aggregator_uuid": agg, "device_uuid": grid, "transaction_id": "s"},
        )
        time.sleep(2.0)  # the selection settles (SELECTION_SETTLE_S) and both readers wait

        statements = [0]
        event.listen(
            web_store.engine, "before_cursor_execute", lambda *a: statements.__setitem__(0, statements[0] + 1)
        )
        time.sleep(IDLE_S)
        idle_reads = statements[0] / IDLE_S

        rng = random.Random(7)
        for _ in range(slots):
            time.sleep(rng.uniform(0.05, 0.45))
            runner.close_running_slot()
            label = max(committed, key=committed.get)
            deadline = time.monotonic() + 10
            while (
                label not in arrived_cycles or label not in arrived_socket
            ) and time.monotonic() < deadline:
                time.sleep(0.002)
    labels = sorted(committed)[-slots:]
    cycles = [1000 * (arrived_cycles[k] - committed[k]) for k in labels if k in arrived_cycles]
    socket = [1000 * (arrived_socket[k] - committed[k]) for k in labels if k in arrived_socket]
    return {
        **summary("cycles", cycles),
        **summary("socket", socket),
        "idle_reads_per_s": round(idle_reads, 1),
    }


def summary(name: str, delays: list[float]) -> dict:
    if not delays:
        return {f"{name}_p50_ms": None, f"{name}_p95_ms": None, f"{name}_max_ms": None, f"{name}_n": 0}
    ordered = sorted(delays)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        f"{name}_p50_ms": round(statistics.median(ordered), 1),
        f"{name}_p95_ms": round(p95, 1),
        f"{name}_max_ms": round(ordered[-1], 1),
        f"{name}_n": len(ordered),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slots", type=int, default=30, help="slots closed per deployment and mode")
    parser.add_argument("--backends", default="sqlite,postgresql", help="of sqlite, postgresql, redis")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the results")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - {"sqlite", "postgresql", "redis"}
    if unknown:
        parser.error(f"unknown backends {sorted(unknown)}")
    sys.path.insert(0, str(ROOT / "tests"))
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-notify-") as tmp, ExitStack() as servers:
        pg = redis_url = None
        if "postgresql" in backends:
            from pg_server import PostgresServer  # started as the tests start it

            pg = PostgresServer()
            pg.start()
            servers.callback(pg.stop)
        if "redis" in backends:
            from redis_server import RedisServer

            redis = RedisServer()
            redis.start()
            servers.callback(redis.stop)
            redis_url = redis.url
        for backend in backends:
            results[backend] = {}
            for mode in ("before", "after"):
                folder = Path(tmp) / f"{backend}-{mode}"
                folder.mkdir()
                if backend == "postgresql":
                    url = pg.create_database(f"bench_notify_{mode}")
                else:
                    url = f"sqlite:///{folder / 'store.sqlite3'}"
                results[backend][mode] = measure(
                    url, redis_url if backend == "redis" else None, mode, args.slots, folder
                )
    head = f"{'deployment':<11} {'mode':<7} {'cycles p50/p95/max ms':>23} {'socket p50/p95/max ms':>23}"
    print(f"{head} {'idle reads/s':>13}")
    for backend, modes in results.items():
        for mode, r in modes.items():
            cycles = f"{r['cycles_p50_ms']}/{r['cycles_p95_ms']}/{r['cycles_max_ms']}"
            socket = f"{r['socket_p50_ms']}/{r['socket_p95_ms']}/{r['socket_max_ms']}"
            print(f"{backend:<11} {mode:<7} {cycles:>23} {socket:>23} {r['idle_reads_per_s']:>13}")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
