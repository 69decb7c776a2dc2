"""The SDK face's websockets are woken by notifications, the outbox staying the durable record.

A server (one gunicorn worker) on a PostgreSQL store, or on SQLite with ``REDIS_URL``, whose
sockets re-read the store only every 60 s: a selection, a closed slot (from the runner, another
process, here another store object with its own notifier) and a batch's reply still reach the
SDK's socket at once, because the write's notification woke it. On SQLite alone the sockets poll;
a notification that was never sent only delays a frame until the socket's next re-read.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gsy_client import SIM, GsyServer, start_server
from gsy_wire import Socket

from app.config import ROOT
from app.exchange.grid import build_grid
from app.exchange.runner import ExchangeRunner
from app.exchange.scenario import load_scenario
from app.store.notify import Notifier
from app.store.repo import ExchangeStore

LONG_S = 60.0  # the sockets' re-read interval where notifications flow: no test waits for it
ARRIVES_S = (
    10.0  # a frame woken by its notification arrives within milliseconds; by 60-s re-reads, not in this
)


@pytest.fixture
def face_on(
    tmp_path: Path, fresh_store_url: Callable[..., str], request: pytest.FixtureRequest
) -> Iterator[Callable[..., GsyServer]]:
    """``face_on(backend, poll_s, reread_s)``: the SDK face on a ``sqlite``, ``postgresql`` or
    ``redis`` (SQLite with ``REDIS_URL``) deployment; the slots close in a runner of its own."""
    made: list[tuple[GsyServer, list[ExchangeStore]]] = []

    def make(backend: str, poll_s: float = 0.1, reread_s: float = LONG_S) -> GsyServer:
        url = fresh_store_url("postgresql" if backend == "postgresql" else "sqlite", "face")
        redis_url = request.getfixturevalue("redis_url") if backend == "redis" else None
        scenario = load_scenario(ROOT / "scenarios" / "challenge.yaml")
        clock_store = ExchangeStore.open(url, scenario, build_grid(scenario), redis_url=redis_url)
        runner = ExchangeRunner(clock_store, slot_seconds=0.0)
        runner.resume()
        web_store = ExchangeStore.open(url, scenario, build_grid(scenario), redis_url=redis_url)
        web_store.events = Notifier.for_store(web_store.engine, redis_url, poll_s=poll_s, reread_s=reread_s)
        http, app = start_server(tmp_path, web_store, {"REDIS_URL": redis_url} if redis_url else None)
        srv = GsyServer(f"http://127.0.0.1:{http.server_port}", SIM, web_store, runner, app, tmp_path)
        srv.extra_servers.append(http)
        made.append((srv, [clock_store, web_store]))
        return srv

    yield make
    for srv, stores in made:
        for sock in srv.sockets:
            sock.close()
        for http in srv.extra_servers:
            http.shutdown()
        for store in stores:
            store.events.close()
            store.engine.dispose()


def listening_socket(srv: GsyServer, path: str, channel: str) -> Socket:
    """The SDK's socket at ``path``, once the server's socket waits on ``channel`` (a frame
    written before that is read by the socket's first read, without any notification)."""
    sock = srv.socket(path, srv.token())
    events = srv.store.events
    deadline = time.monotonic() + 10
    while not (events.waiting(channel) and events.listening):
        assert time.monotonic() < deadline, f"the server's socket never waited on {channel}"
        time.sleep(0.02)
    return sock


def frame(sock: Socket) -> dict:
    try:
        return sock.next(timeout=ARRIVES_S).message
    except queue.Empty:
        raise AssertionError("no frame: the socket was not woken") from None


@pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgres), "redis"])
def test_selection_slot_and_reply_wake_the_sdk_socket(face_on: Callable[..., GsyServer], backend: str):
    srv = face_on(backend, poll_s=LONG_S, reread_s=LONG_S)
    token = srv.token()
    agg = srv.post(f"{srv.aggregator_prefix}create-aggregator/", token, {"name": "dso"}).json()["uuid"]
    sock = listening_socket(srv, f"aggregator/{agg}/", f"aggregator:{agg}")
    community = srv.market("Community")
    srv.post(
        f"{srv.aggregator_prefix}select-aggregator/",
        token,
        {"aggregator_uuid": agg, "device_uuid": community},
    )
    assert frame(sock)["event"] == "selected_by_device"
    (closed,) = srv.close()  # the runner's own store: the notification comes through the server
    event = frame(sock)
    assert event["event"] == "market" and event["market_slot"] == closed["market_slot"]
    batch = {community: [{"type": "grid_fees", "data": {"fee_const": 4}}]}
    posted = srv.post(
        f"{srv.aggregator_prefix}batch-commands/", token, {"aggregator_uuid": agg, "batch_commands": batch}
    )
    reply = frame(sock)
    assert reply["command"] == "batch_commands" and reply["transaction_id"] == posted.json()["transaction_id"]

    market_sock = listening_socket(srv, f"{community}/", f"area:{community}")
    prefix = f"{srv.url}/external-connection/api/{srv.sim}/{community}"
    srv.post(f"{prefix}/grid-fee/", token, {"fee_const": 6}, tid="direct-1")
    assert frame(market_sock)["transaction_id"] == "direct-1"


def test_on_sqlite_alone_the_sdk_socket_polls(face_on: Callable[..., GsyServer]):
    srv = face_on("sqlite")
    assert srv.store.events.backend == "polling"
    token = srv.token()
    agg = srv.post(f"{srv.aggregator_prefix}create-aggregator/", token, {"name": "dso"}).json()["uuid"]
    sock = srv.socket(f"aggregator/{agg}/", token)
    srv.post(
        f"{srv.aggregator_prefix}select-aggregator/",
        token,
        {"aggregator_uuid": agg, "device_uuid": srv.market("Grid")},
    )
    assert frame(sock)["event"] == "selected_by_device"
    (closed,) = srv.close()  # another store object: nothing wakes the socket but its polling
    assert frame(sock)["market_slot"] == closed["market_slot"]


@pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgres), "redis"])
def test_a_lost_notification_only_delays_the_frame(
    face_on: Callable[..., GsyServer], backend: str, monkeypatch: pytest.MonkeyPatch
):
    """No notification is sent at all: the frames still come, from the outbox and the store, at
    the socket's re-reads (every 0.5 s here)."""
    srv = face_on(backend, poll_s=0.5, reread_s=0.5)
    for store in (srv.store, srv.runner.store):
        monkeypatch.setattr(store.events, "publish", lambda channel, payload="": None)
    token = srv.token()
    agg = srv.post(f"{srv.aggregator_prefix}create-aggregator/", token, {"name": "dso"}).json()["uuid"]
    sock = listening_socket(srv, f"aggregator/{agg}/", f"aggregator:{agg}")
    srv.post(
        f"{srv.aggregator_prefix}select-aggregator/",
        token,
        {"aggregator_uuid": agg, "device_uuid": srv.market("Grid")},
    )
    assert frame(sock)["event"] == "selected_by_device"
    (closed,) = srv.close()
    assert frame(sock)["market_slot"] == closed["market_slot"]
