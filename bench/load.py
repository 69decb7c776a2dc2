"""Load: simulated browsers polling the console under ``gunicorn -w 3`` with the clock, against a
separate exchange process whose HTTP requests are counted.

    .venv/bin/python bench/load.py [--browsers 50] [--duration 300] [--baseline 60] [--json]

What runs (loopback only, ports ``--port`` .. ``--port`` + 2, default 8071-8073), each from a
temporary folder that is removed at the end:

* the exchange: ``python -m app.entry.exchange --port 8072`` (a slot every ``--slot-seconds``), its own
  SQLite store; werkzeug logs one line per HTTP request it serves, which is what is counted;
* ``redis-server`` on 8073 (``--cache simple``: none, a cache per worker);
* the console, as a PaaS starts it from the ``Procfile``: ``release:`` (migrations), ``web:``
  (gunicorn, ``WEB_CONCURRENCY=3``) on 8071 and ``clock:`` (with ``GRID_API_URL`` set it runs the
  operator agent only, over HTTP to the exchange), with ``REDIS_URL`` and, as behind a PaaS
  router, ``TRUSTED_PROXY_HOPS=1`` (each simulated browser has an address of its own in
  ``X-Forwarded-For``, so the login rate limit counts per browser as in production).

A simulated browser is a thread with its own cookies. It signs in with the login form (GET for the
session's CSRF token, POST), then alternates between the overview and a random managed market
page, staying ``--visit`` seconds on each on average (0.5 to 1.5 times that). Every visit is a
full page load, as a browser makes it: GET of the page, ``/_dash-layout`` and
``/_dash-dependencies``, then the ``/_dash-update-component`` POSTs of the page's initial
callbacks (header, page routing; on the overview the grid's click callback, on a market page the
fee control's mode and preview), then every ``dcc.Interval`` tick (its interval is read from the
layout, 2 s) the header's and the page's tick callbacks: the overview's rows, or the market's
chart appends (``Patch``). The payloads are those Dash's renderer sends (captured from headless
Chromium: the ``X-CSRFToken`` header from the ``_csrf_token`` cookie, the ``endId`` of the page's
config, ids and values from the layout, the store states as the last answers set them); requests
of one tick go out together, as the renderer sends them. Static files
(``/_dash-component-suites``) are not fetched: a browser has them cached.

Two phases: ``--baseline`` seconds with 1 browser, then ``--duration`` seconds with
``--browsers``. Reported for each: requests per second, p50 / p95 latency, errors (a status other
than 200, 204 for callbacks, 302 for the login post, or no answer within 30 s; a request that
finds its kept-alive connection closed by the server before any answer is sent again once, as
browsers do, and counted apart), and the exchange's requests per closed slot (all of them: the
agent's and the web workers'; goal: no more with many browsers than with one). With ``--json``
the last line is one JSON object with ``browsers, duration_s, requests, rps, p50_ms, p95_ms,
errors, exchange_calls_per_slot_1_browser, exchange_calls_per_slot_n_browsers`` (of the second
phase) and more detail.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# the processes as a PaaS runs them: the same as the deployment tests
from app.console import ids  # noqa: E402 - after the path
from tests.deploy.deploy_procs import process_env, procfile, run_procfile_line  # noqa: E402 - after the path

PASSWORD = {"operator": "operator"}
REQUEST_TIMEOUT_S = 30.0
START_TIMEOUT_S = 120.0
ACCESS_LINE = re.compile(r'"(GET|POST|PUT|DELETE|PATCH) (\S+) HTTP/1\.[01]"')
CONFIG = re.compile(r'<script id="_dash-config" type="application/json">(.*?)</script>', re.S)
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


# -- the processes ------------------------------------------------------------------------------
@dataclass
class Stack:
    """The processes of one run, each in a process group of its own, logs in ``tmp``."""

    tmp: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def env(self, **settings: str) -> dict[str, str]:
        return process_env(**settings)  # our settings must not leak in from the calling shell

    def log(self, name: str) -> Path:
        return self.tmp / f"{name}.log"

    def start(self, name: str, command: str, env: dict[str, str]) -> subprocess.Popen:
        proc = self.procs[name] = run_procfile_line(command, env, self.log(name))
        return proc

    def tail(self, name: str, lines: int = 15) -> str:
        try:
            text = self.log(name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def fail(self, what: str) -> RuntimeError:
        logs = "\n".join(f"--- {n} ---\n{self.tail(n)}" for n in self.procs)
        return RuntimeError(f"{what}\n{logs}")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # what is left of the group (workers)
            except ProcessLookupError:
                pass


def wait_for(what: str, ok, stack: Stack, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ok():
                return
        except (requests.RequestException, sqlite3.Error):
            pass
        # a process that stopped (release: that failed) will not answer
        dead = [
            n for n, p in stack.procs.items() if p.poll() is not None and (n != "release" or p.poll() != 0)
        ]
        if dead:
            raise stack.fail(f"{', '.join(dead)} stopped while waiting for {what}")
        time.sleep(0.2)
    raise stack.fail(f"timed out after {timeout:.0f} s waiting for {what}")


class Exchange:
    """What the bench reads of the exchange without asking it: its access log and its store."""

    def __init__(self, log: Path, database: Path):
        self.log, self.database = log, database

    def requests(self) -> Counter:
        """Requests served so far, by method and path (query strings dropped)."""
        served: Counter = Counter()
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            found = ACCESS_LINE.search(line)
            if found and "werkzeug" in line:
                served[f"{found.group(1)} {found.group(2).split('?')[0]}"] += 1
        return served

    def last_closed(self) -> int:
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=10) as db:
            row = db.execute("SELECT last_closed_slot FROM exchange_state").fetchone()
        if row is None or row[0] is None:
            return -1
        return int(row[0])


def start_stack(stack: Stack, args: argparse.Namespace) -> tuple[str, Exchange]:
    web_port, exchange_port, redis_port = args.port, args.port + 1, args.port + 2
    secret = "load-bench-secret"
    ex_db = stack.tmp / "exchange.sqlite3"
    exchange_env = stack.env(
        INSTANCE_DIR=str(stack.tmp / "exchange"),
        DATABASE_URL=f"sqlite:///{ex_db}",
        SLOT_SECONDS=str(args.slot_seconds),
        SECRET_KEY=secret,
    )
    (stack.tmp / "exchange").mkdir()
    stack.start("exchange", f"python -m app.entry.exchange --port {exchange_port} --quiet", exchange_env)
    exchange = Exchange(stack.log("exchange"), ex_db)
    redis_url = None
    if args.cache == "redis":
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(binary).exists():
            raise SystemExit("redis-server is not installed (Debian package redis-server): --cache simple")
        stack.start(
            "redis",
            f"{binary} --port {redis_port} --bind 127.0.0.1 --save '' --appendonly no --dir {stack.tmp}",
            stack.env(),
        )
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
    console = dict(
        PORT=str(web_port),
        WEB_CONCURRENCY=str(args.workers),
        INSTANCE_DIR=str(stack.tmp / "console"),
        DATABASE_URL=f"sqlite:///{stack.tmp / 'console.sqlite3'}",
        GRID_API_URL=f"http://127.0.0.1:{exchange_port}",
        SLOT_SECONDS=str(args.slot_seconds),
        SECRET_KEY=secret,
        TRUSTED_PROXY_HOPS="1",
    )
    if redis_url:
        console["REDIS_URL"] = redis_url
    (stack.tmp / "console").mkdir()
    env = stack.env(**console)
    commands = procfile()
    release = stack.start("release", commands["release"], env)
    if release.wait(timeout=START_TIMEOUT_S) != 0:
        raise stack.fail("release (alembic upgrade head) failed")
    wait_for("the exchange's first slot", lambda: exchange.last_closed() >= 0, stack)
    stack.start("web", commands["web"], env)
    stack.start("clock", commands["clock"], env)
    base = f"http://127.0.0.1:{web_port}"
    wait_for("the console", lambda: requests.get(f"{base}/login", timeout=5).status_code == 200, stack)
    console_db = stack.tmp / "console.sqlite3"

    def agent_follows() -> bool:
        with sqlite3.connect(f"file:{console_db}?mode=ro", uri=True, timeout=10) as db:
            return db.execute("SELECT count(*) FROM op_history").fetchone()[0] > 0

    wait_for("the clock's agent to follow the exchange", agent_follows, stack)
    return base, exchange


# -- a browser ----------------------------------------------------------------------------------
def pid(**parts: str) -> str:
    """A pattern-matching id as Dash writes it in a callback's output string."""
    return json.dumps(parts, sort_keys=True, separators=(",", ":"))


def components(node) -> list[dict]:
    """Every component's props in a layout tree, in layout order."""
    found = []

    def walk(value) -> None:
        if isinstance(value, dict):
            if "props" in value and "type" in value:
                found.append(value["props"])
                for prop in value["props"].values():
                    walk(prop)
            else:
                for v in value.values():
                    walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(node)
    return found


def prop(component: dict, component_id, name: str) -> dict:
    """A callback input or state entry: ``value`` only when the component has the prop."""
    entry = {"id": component_id, "property": name}
    if name in component:
        entry["value"] = component[name]
    return entry


def changed(*ids: str) -> dict:
    return {"changedPropIds": list(ids), "parsedChangedPropsIds": list(ids)}


@dataclass
class Recorder:
    """Every request of a phase: (kind, seconds, ok)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    rows: list[tuple[str, float, bool]] = field(default_factory=list)
    failures: Counter = field(default_factory=Counter)
    retries: int = 0

    def retry(self) -> None:
        with self.lock:
            self.retries += 1

    def add(self, kind: str, seconds: float, ok: bool, why: str = "") -> None:
        with self.lock:
            self.rows.append((kind, seconds, ok))
            if not ok:
                self.failures[f"{kind}: {why}"] += 1


class Browser:
    def __init__(self, base: str, n: int, recorder: Recorder, pool: ThreadPoolExecutor, rng: random.Random):
        self.base, self.recorder, self.pool, self.rng = base, recorder, pool, rng
        self.session = requests.Session()
        self.session.headers["X-Forwarded-For"] = f"10.{n // 60000}.{n // 250 % 240}.{n % 250 + 1}"
        self.end_id = ""
        self.interval_s = 2.0
        self.markets: list[str] = []
        self.page: dict = {}
        self.dependencies: list[dict] = []

    # one request, timed; ``ok`` is the set of statuses that count as answered
    def request(self, kind: str, method: str, path: str, ok: tuple[int, ...] = (200,), **kwargs):
        started = time.perf_counter()
        for attempt in (1, 2):
            try:
                response = self.session.request(
                    method, f"{self.base}{path}", timeout=REQUEST_TIMEOUT_S, allow_redirects=False, **kwargs
                )
                break
            except requests.ConnectionError as exc:
                # the server closed an idle kept-alive connection as we reused it, before any
                # answer: a browser sends the request again on a new connection, once
                if attempt == 1 and "Connection aborted" in str(exc):
                    self.recorder.retry()
                    continue
                self.recorder.add(kind, time.perf_counter() - started, False, type(exc).__name__)
                return None
            except requests.RequestException as exc:
                self.recorder.add(kind, time.perf_counter() - started, False, type(exc).__name__)
                return None
        elapsed = time.perf_counter() - started
        good = response.status_code in ok
        self.recorder.add(kind, elapsed, good, str(response.status_code))
        return response if good else None

    def callback(self, kind: str, payload: dict):
        headers = {"X-CSRFToken": self.session.cookies.get("_csrf_token", ""), "Accept": "application/json"}
        response = self.request(
            kind,
            "POST",
            f"/_dash-update-component?endId={self.end_id}",
            ok=(200, 204),
            json=payload,
            headers=headers,
        )
        if response is None or response.status_code == 204:
            return None
        return response.json().get("response")

    def together(self, *calls) -> list:
        """Send callback requests at once, as the renderer does; their answers in order."""
        futures = [self.pool.submit(self.callback, kind, payload) for kind, payload in calls]
        return [f.result() for f in futures]

    def login(self) -> bool:
        page = self.request("login form", "GET", "/login?next=/")
        if page is None:
            return False
        token = CSRF_FIELD.search(page.text).group(1)
        form = {"csrf_token": token, "next": "/", "username": "operator", "password": PASSWORD["operator"]}
        return self.request("login", "POST", "/login", ok=(302,), data=form) is not None

    # -- pages -------------------------------------------------------------------------------
    def header(self, n: int | None) -> tuple[str, dict]:
        """The shell's header callback as the browser sends it (its three outputs: the header bar,
        the fee timing and the server's state; the browser's zone as state)."""
        tick = {"id": ids.TICK, "property": "n_intervals"}
        if n is not None:
            tick["value"] = n
        outputs = [(ids.HEADER, "children"), (ids.FEE_TIMING, "data"), (ids.SERVER_OK, "data")]
        return "cb header", {
            "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
            "outputs": [{"id": i, "property": p} for i, p in outputs],
            "inputs": [tick],
            "state": [{"id": ids.BROWSER_TZ, "property": "data", "value": "Europe/Berlin"}],
            **(changed(f"{ids.TICK}.n_intervals") if n is not None else changed()),
        }

    def load(self, path: str) -> bool:
        """A full page load: the page, Dash's layout and dependencies, the initial callbacks."""
        html = self.request("page", "GET", path)
        if html is None:
            return False
        config = json.loads(CONFIG.search(html.text).group(1))
        self.end_id = config.get("end_id", "")
        layout = self.request("page", "GET", "/_dash-layout")
        dependencies = self.request("page", "GET", "/_dash-dependencies")
        if layout is None or dependencies is None:
            return False
        self.dependencies = dependencies.json()
        for c in components(layout.json()):
            if c.get("id") == "tick":
                self.interval_s = c.get("interval", 1000) / 1000.0
        routing = {
            "output": ".._pages_content.children..._pages_store.data..",
            "outputs": [
                {"id": "_pages_content", "property": "children"},
                {"id": "_pages_store", "property": "data"},
            ],
            "inputs": [
                {"id": "_pages_location", "property": "pathname", "value": path},
                {"id": "_pages_location", "property": "search", "value": ""},
            ],
            **changed("_pages_location.pathname", "_pages_location.search"),
        }
        _, content = self.together(self.header(None), ("cb page routing", routing))
        if content is None:
            return False
        page = components(content["_pages_content"]["children"])
        if path == "/":
            return self.open_overview(page)
        return self.open_market(page)

    def open_overview(self, page: list[dict]) -> bool:
        grid = next((c for c in page if c.get("id") == "overview-grid"), None)
        if grid is None:
            return False
        self.markets = [row["id"] for row in grid.get("rowData") or []] or self.markets
        # its output is "location.href@<hash>" (allow_duplicate): the name Dash's dependencies give
        output = next(
            d["output"]
            for d in self.dependencies
            if d["output"].startswith("location.href@")
            and {"id": "overview-grid", "property": "cellClicked"} in d["inputs"]
        )
        click = {
            "output": output,
            "outputs": {"id": "location", "property": output.split(".", 1)[1]},
            "inputs": [{"id": "overview-grid", "property": "cellClicked"}],
            **changed("overview-grid.cellClicked"),
        }
        self.together(("cb overview click", click))
        self.page = {"kind": "overview", "shown": {"id": "overview-slot", "property": "data"}}
        return True

    def open_market(self, page: list[dict]) -> bool:
        by_type: dict[str, list[dict]] = {}
        for c in page:
            if isinstance(c.get("id"), dict):
                by_type.setdefault(c["id"]["type"], []).append(c)
        if not by_type.get("market-last"):
            return False
        last = by_type["market-last"][0]
        market = last["id"]["market"]
        mode = by_type["fee-mode"][0]
        show = {
            "output": f"..{pid(market=['MATCH'], mode=['ALL'], type='fee-section')}.style..."
            f"{pid(market=['MATCH'], type='fee-mode-badge')}.children..",
            "outputs": [
                [{"id": c["id"], "property": "style"} for c in by_type.get("fee-section", [])],
                {"id": {"market": market, "type": "fee-mode-badge"}, "property": "children"},
            ],
            "inputs": [prop(mode, mode["id"], "value")],
            **changed(),
        }
        table = by_type["tou-table"][0]
        box = by_type["fee-input"][0]
        preview = {
            "output": f"{pid(market=['MATCH'], type='fee-preview')}.children",
            "outputs": {"id": {"market": market, "type": "fee-preview"}, "property": "children"},
            "inputs": [
                prop(mode, mode["id"], "value"),
                [prop(c, c["id"], "value") for c in by_type.get("fee-param", [])],
                prop(table, table["id"], "data"),
                prop(box, box["id"], "value"),
                prop(last, last["id"], "data"),  # a closed slot and the send point recompute it
                {"id": ids.FEE_TARGET, "property": "data"},
            ],
            **changed(),
        }
        self.together(("cb market preview", preview), ("cb market mode", show))
        graphs = [c["id"] for c in by_type.get("market-graph", []) if c["id"]["market"] == market]
        self.page = {"kind": "market", "market": market, "graphs": graphs, "last": last.get("data")}
        return True

    def tick(self, n: int) -> None:
        if self.page["kind"] == "overview":
            state = self.page["shown"]
            rows = {
                "output": "..overview-grid.rowData...overview-slot.data..",
                "outputs": [
                    {"id": "overview-grid", "property": "rowData"},
                    {"id": "overview-slot", "property": "data"},
                ],
                "inputs": [{"id": "tick", "property": "n_intervals", "value": n}],
                **changed("tick.n_intervals"),
                "state": [state],
            }
            _, answer = self.together(self.header(n), ("cb overview rows", rows))
            if answer:  # the store keeps what the answer set: the next tick sends it
                self.page["shown"] = {**state, "value": answer["overview-slot"]["data"]}
            return
        market = self.page["market"]
        last_id = {"market": market, "type": "market-last"}
        state = {"id": last_id, "property": "data"}
        if self.page["last"] is not None:
            state["value"] = self.page["last"]
        append = {
            "output": f"..{pid(chart=['ALL'], market=['MATCH'], type='market-graph')}.figure..."
            f"{pid(market=['MATCH'], type='market-last')}.data..",
            "outputs": [
                [{"id": g, "property": "figure"} for g in self.page["graphs"]],
                {"id": last_id, "property": "data"},
            ],
            "inputs": [{"id": "tick", "property": "n_intervals", "value": n}],
            **changed("tick.n_intervals"),
            "state": [state],
        }
        _, answer = self.together(self.header(n), ("cb market append", append))
        if answer:
            self.page["last"] = answer[pid(**last_id)]["data"]

    def run(self, stop: threading.Event, visit_s: float) -> None:
        if not self.login():
            return
        n = 0
        show_overview = True
        while not stop.is_set():
            if show_overview or not self.markets:
                loaded = self.load("/")
            else:
                loaded = self.load(f"/markets/{self.rng.choice(self.markets)}")
            show_overview = not show_overview
            if not loaded:
                stop.wait(self.interval_s)  # as a user would retry; the failure is counted
                continue
            # users stay a while, not all equally long: their page loads do not fall in step
            leave = time.monotonic() + visit_s * self.rng.uniform(0.5, 1.5)
            next_tick = time.monotonic() + self.interval_s
            while not stop.is_set() and time.monotonic() < leave:
                if stop.wait(max(next_tick - time.monotonic(), 0.0)):
                    break
                n += 1
                self.tick(n)
                next_tick = max(next_tick + self.interval_s, time.monotonic())


# -- a phase ------------------------------------------------------------------------------------
POLLS = ("cb header", "cb overview rows", "cb market append")  # what every tick sends


def percentile_ms(sorted_s: list[float], q: float) -> float | None:
    if not sorted_s:
        return None
    if q == 0.5:
        return round(statistics.median(sorted_s) * 1000, 1)
    return round(sorted_s[int(q * (len(sorted_s) - 1))] * 1000, 1)


def phase(base: str, exchange: Exchange, browsers: int, duration_s: float, visit_s: float, seed: int) -> dict:
    recorder = Recorder()
    stop = threading.Event()
    rng = random.Random(seed)
    slots_before, served_before = exchange.last_closed(), exchange.requests()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4 * browsers, thread_name_prefix="request") as pool:
        threads = []
        for n in range(browsers):
            browser = Browser(base, n + 1 + seed * 1000, recorder, pool, random.Random(rng.random()))
            thread = threading.Thread(target=browser.run, args=(stop, visit_s), daemon=True)
            threads.append(thread)
        for n, thread in enumerate(threads):  # users arrive over the first two seconds
            thread.start()
            time.sleep(2.0 / browsers if n < browsers - 1 else 0)
        stop.wait(max(duration_s - (time.monotonic() - started), 0))
        stop.set()
        for thread in threads:
            thread.join(timeout=REQUEST_TIMEOUT_S + 5)
    elapsed = time.monotonic() - started
    slots = exchange.last_closed() - slots_before
    served = exchange.requests()
    served.subtract(served_before)
    calls = sum(served.values())
    times = sorted(t for _, t, _ in recorder.rows)
    polls = sorted(t for kind, t, _ in recorder.rows if kind in POLLS)
    kinds: dict[str, list[float]] = {}
    for kind, t, _ in recorder.rows:
        kinds.setdefault(kind, []).append(t)
    return {
        "browsers": browsers,
        "duration_s": round(elapsed, 1),
        "requests": len(times),
        "rps": round(len(times) / elapsed, 1),
        "p50_ms": percentile_ms(times, 0.5),
        "p95_ms": percentile_ms(times, 0.95),
        "poll_p50_ms": percentile_ms(polls, 0.5),
        "poll_p95_ms": percentile_ms(polls, 0.95),
        "errors": sum(1 for _, _, ok in recorder.rows if not ok),
        "error_kinds": dict(recorder.failures),
        "stale_connection_retries": recorder.retries,
        "by_kind": {
            k: {"requests": len(v), "p95_ms": percentile_ms(sorted(v), 0.95)}
            for k, v in sorted(kinds.items())
        },
        "slots": slots,
        "exchange_calls": calls,
        "exchange_calls_per_slot": round(calls / slots, 2) if slots > 0 else None,
        "exchange_calls_by_path": {k: v for k, v in sorted(served.items()) if v},
    }


def report(one: dict, many: dict, args: argparse.Namespace, load: tuple, result: dict) -> None:
    print(f"web: {procfile()['web']} (WEB_CONCURRENCY={args.workers})")
    print(
        f"console: gunicorn -w {args.workers} (Procfile web) + clock, cache {args.cache}; exchange: "
        f"python -m app.entry.exchange, a slot every {args.slot_seconds:g} s"
    )
    print(f"load average before {load[0]:.2f}, after {load[1]:.2f} ({os.cpu_count()} CPUs)")
    print()
    many_label = f"{many['browsers']} browsers"
    print(f"{'':32}{'1 browser':>14}{many_label:>14}")
    rows = [
        ("duration [s]", "duration_s"),
        ("requests", "requests"),
        ("requests per second", "rps"),
        ("p50 latency [ms]", "p50_ms"),
        ("p95 latency [ms]", "p95_ms"),
        ("  of the polls: p50 [ms]", "poll_p50_ms"),
        ("  of the polls: p95 [ms]", "poll_p95_ms"),
        ("errors", "errors"),
        ("resent on a new connection", "stale_connection_retries"),
        ("slots closed", "slots"),
        ("exchange calls", "exchange_calls"),
        ("exchange calls per slot", "exchange_calls_per_slot"),
    ]
    for label, key in rows:
        print(f"{label:32}{str(one[key]):>14}{str(many[key]):>14}")
    print()
    print("exchange calls per slot, by request")
    for path in sorted(set(one["exchange_calls_by_path"]) | set(many["exchange_calls_by_path"])):
        a = one["exchange_calls_by_path"].get(path, 0) / max(one["slots"], 1)
        b = many["exchange_calls_by_path"].get(path, 0) / max(many["slots"], 1)
        print(f"  {path:30}{a:>14.2f}{b:>14.2f}")
    print()
    print(f"p95 latency by request, {many['browsers']} browsers")
    for kind, v in many["by_kind"].items():
        print(f"  {kind:30}{v['requests']:>8} requests {v['p95_ms']:>8} ms")
    if many["error_kinds"] or one["error_kinds"]:
        print(f"errors: {one['error_kinds']} / {many['error_kinds']}")
    if args.json:
        print(json.dumps(result))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--browsers", type=int, default=50)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds with --browsers browsers")
    parser.add_argument("--baseline", type=float, default=60.0, help="seconds with 1 browser first")
    parser.add_argument("--visit", type=float, default=30.0, help="seconds on a page before the next one")
    parser.add_argument("--slot-seconds", type=float, default=5.0, help="the exchange's slot length [s]")
    parser.add_argument("--workers", type=int, default=3, help="WEB_CONCURRENCY of gunicorn")
    parser.add_argument("--cache", choices=("redis", "simple"), default="redis")
    parser.add_argument("--port", type=int, default=8071, help="console; the exchange +1, Redis +2")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="gridfee-load-") as tmp:
        stack = Stack(Path(tmp))
        try:
            base, exchange = start_stack(stack, args)
            one = phase(base, exchange, 1, args.baseline, args.visit, seed=1)
            many = phase(base, exchange, args.browsers, args.duration, args.visit, seed=2)
        finally:
            stack.stop()
    result = {
        "browsers": args.browsers,
        "duration_s": many["duration_s"],
        "requests": many["requests"],
        "rps": many["rps"],
        "p50_ms": many["p50_ms"],
        "p95_ms": many["p95_ms"],
        "errors": many["errors"],
        "exchange_calls_per_slot_1_browser": one["exchange_calls_per_slot"],
        "exchange_calls_per_slot_n_browsers": many["exchange_calls_per_slot"],
        "slot_seconds": args.slot_seconds,
        "workers": args.workers,
        "cache": args.cache,
        "baseline": one,
        "detail": many,
    }
    report(one, many, args, (load_before, os.getloadavg()[0]), result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
