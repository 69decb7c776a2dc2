"""The SDK face on the wire: the sequence a gsy-e-sdk grid-operator script sends (reference §4.4),
replayed with ``requests`` and a ``websockets`` 12 client against a live server."""

from __future__ import annotations

import json
import time

import pytest
import requests
import websockets
from gsy_client import GsyServer, start_server

from app.operator.store import OperatorStore


def connect_like_the_sdk(srv: GsyServer, names=("Grid", "Community")):
    """Token, aggregator, its socket, registry, GraphQL names -> uuids, market sockets, select."""
    token = srv.token()
    listed = srv.get(f"{srv.aggregator_prefix}list-aggregators/", token)
    assert listed.status_code == 200 and listed.json() == []
    created = srv.post(f"{srv.aggregator_prefix}create-aggregator/", token, {"name": "dso"})
    assert created.status_code == 200
    agg = created.json()["uuid"]
    agg_socket = srv.socket(f"aggregator/{agg}/", srv.token())
    registry = srv.get(f"{srv.url}/external-connection/configurations/{srv.sim}/registry", token).json()
    registered = [registry["name"]] + [c["name"] for c in registry["children"] if c["registered"]]
    assert registry["registered"] is True and registered == ["Grid", "Community"]
    uuids = srv.graphql_uuids(srv.token())
    for name in names:
        srv.socket(f"{uuids[name]}/", srv.token())
        selected = srv.post(
            f"{srv.aggregator_prefix}select-aggregator/",
            srv.token(),
            {"aggregator_uuid": agg, "device_uuid": uuids[name]},
        )
        assert selected.status_code == 200 and selected.json()["aggregator_uuid"] == agg
    return token, agg, agg_socket, uuids


def test_token_endpoint_answers_access_and_token_for_old_and_new_sdks(gsy_server: GsyServer):
    response = gsy_server.token_answer("operator", "operator")
    assert response.status_code == 200
    assert response.json()["access"] == response.json()["token"]


def test_selected_markets_are_announced_as_binary_frames(gsy_server: GsyServer):
    _, agg, agg_socket, uuids = connect_like_the_sdk(gsy_server)
    frames = [agg_socket.next(), agg_socket.next()]
    assert all(f.binary for f in frames)
    assert [f.message["event"] for f in frames] == ["selected_by_device"] * 2
    assert [f.message["device_uuid"] for f in frames] == [uuids["Grid"], uuids["Community"]]
    assert all("command" not in f.message for f in frames)


def test_a_socket_opened_after_the_selection_still_hears_of_it(gsy_server: GsyServer):
    _, agg, first, uuids = connect_like_the_sdk(gsy_server, names=("Community",))
    first.next()
    late = gsy_server.socket(f"aggregator/{agg}/", gsy_server.token())
    frame = late.next()
    assert frame.message == {
        "event": "selected_by_device",
        "aggregator_uuid": agg,
        "device_uuid": uuids["Community"],
    }


def test_market_event_each_slot_carries_the_uuid_keyed_grid_tree(gsy_server: GsyServer):
    _, _, agg_socket, uuids = connect_like_the_sdk(gsy_server)
    gsy_server.close()
    frame = agg_socket.next(skip_events=("selected_by_device",))
    event = frame.message
    assert frame.binary and event["event"] == "market"
    assert event["slot_completion"] == "0%" and event["num_ticks"] == 10.0
    assert event["simulation_id"] == gsy_server.sim
    # one event per closed slot, naming the slot now running
    gsy_server.close()
    second = agg_socket.next(skip_events=("selected_by_device",)).message
    assert second["market_slot"] == gsy_server.label(gsy_server.running_slot())
    tree = second["grid_tree"]
    grid = tree[uuids["Grid"]]
    community = grid["children"][uuids["Community"]]
    assert grid["area_name"] == "Grid" and community["area_name"] == "Community"
    for node in (grid, community):
        assert set(node["last_market_stats"]) >= {
            "min_trade_rate",
            "max_trade_rate",
            "avg_trade_rate",
            "median_trade_rate",
            "total_traded_energy_kWh",
        }
        assert {"last_market_fee", "current_market_fee", "last_market_bill", "children"} <= set(node)
    assert grid["current_market_fee"] == 4.0 and community["current_market_fee"] == 1.0
    houses = [n for n in community["children"].values() if "children" in n]
    assert len(houses) == 29 and all(n["area_name"] for n in houses)


def test_no_market_event_for_an_aggregator_without_markets(gsy_server: GsyServer):
    token = gsy_server.token()
    agg = gsy_server.post(
        f"{gsy_server.aggregator_prefix}create-aggregator/", token, {"name": "idle"}
    ).json()["uuid"]
    sock = gsy_server.socket(f"aggregator/{agg}/", token)
    gsy_server.close()
    assert sock.quiet() == []


def test_batch_of_stats_and_fees_is_answered_on_the_socket_and_fees_apply_from_the_next_slot(
    gsy_server: GsyServer,
):
    token, agg, agg_socket, uuids = connect_like_the_sdk(gsy_server)
    gsy_server.close()
    agg_socket.next(skip_events=("selected_by_device",))
    sent_during = gsy_server.running_slot()
    batch = {
        uuids["Grid"]: [
            {"type": "dso_market_stats", "data": {}},
            {"type": "grid_fees", "data": {"fee_const": 10}},
        ],
        uuids["Community"]: [
            {"type": "dso_market_stats", "data": {}},
            {"type": "grid_fees", "data": {"fee_const": 2.5}},
        ],
    }
    posted = gsy_server.post(
        f"{gsy_server.aggregator_prefix}batch-commands/",
        token,
        {"aggregator_uuid": agg, "batch_commands": batch},
    )
    assert posted.status_code == 200 and posted.json()
    tid = posted.json()["transaction_id"]
    reply = agg_socket.next(skip_events=("selected_by_device",))
    assert reply.binary and "event" not in reply.message
    assert reply.message["command"] == "batch_commands" and reply.message["transaction_id"] == tid
    assert reply.message["aggregator_uuid"] == agg
    stats, fee = reply.message["responses"][uuids["Grid"]]
    assert stats["name"] == "Grid" and stats["status"] == "ready"
    assert set(stats["market_stats"]["area_throughput"]) == {"import", "export"}
    assert fee == {
        "area_uuid": uuids["Grid"],
        "command": "grid_fees",
        "status": "ready",
        "market_fee_const": "10.0",
        "market_fee_percent": "None",
        "applies_from_slot": gsy_server.label(sent_during + 1),
    }
    grid, community = (gsy_server.store.grid.by_uuid()[uuids[n]].index for n in ("Grid", "Community"))
    assert gsy_server.store.fees_for_slot(sent_during)[[grid, community]].tolist() == [4.0, 1.0]
    gsy_server.close()
    assert gsy_server.store.fees_for_slot(sent_during + 1)[[grid, community]].tolist() == [10.0, 2.5]
    # the console's audit log shows them with the aggregator as source
    audit = OperatorStore(gsy_server.store.engine).commands()
    assert {(c["market_name"], c["fee_ct_per_kwh"], c["status"], c["source"]) for c in audit} == {
        ("Grid", 10.0, "applied", "gsy-sdk:dso"),
        ("Community", 2.5, "applied", "gsy-sdk:dso"),
    }


def test_resent_batch_with_the_same_transaction_id_is_applied_once(gsy_server: GsyServer):
    token, agg, agg_socket, uuids = connect_like_the_sdk(gsy_server, names=("Community",))
    body = {
        "aggregator_uuid": agg,
        "batch_commands": {uuids["Community"]: [{"type": "grid_fees", "data": {"fee_const": 3}}]},
    }
    for _ in range(2):
        assert (
            gsy_server.post(
                f"{gsy_server.aggregator_prefix}batch-commands/", token, body, tid="t-1"
            ).status_code
            == 200
        )
    replies = [agg_socket.next(skip_events=("selected_by_device",)).message for _ in range(2)]
    assert replies[0]["responses"] == replies[1]["responses"]
    assert len(OperatorStore(gsy_server.store.engine).commands()) == 1


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"fee_const": -1}, "negative_fee"),
        ({"fee_const": None}, "invalid_fee"),
        ({"fee_const": "ten"}, "invalid_fee"),
        ({"fee_percent": 5}, "fee_percent_unsupported"),
        ({"fee_const": 5000}, "fee_above_maximum"),
    ],
)
def test_a_bad_fee_gets_an_error_reply_and_changes_nothing(gsy_server: GsyServer, data: dict, code: str):
    token, agg, agg_socket, uuids = connect_like_the_sdk(gsy_server, names=("Community",))
    community = uuids["Community"]
    before = gsy_server.store.fees_for_slot(gsy_server.running_slot() + 1).tolist()
    body = {"aggregator_uuid": agg, "batch_commands": {community: [{"type": "grid_fees", "data": data}]}}
    assert gsy_server.post(f"{gsy_server.aggregator_prefix}batch-commands/", token, body).status_code == 200
    (answer,) = agg_socket.next(skip_events=("selected_by_device",)).message["responses"][community]
    assert answer["status"] == "error" and answer["command"] == "grid_fees"
    assert answer["error"] == code and answer["error_message"]
    assert gsy_server.store.fees_for_slot(gsy_server.running_slot() + 1).tolist() == before


def test_a_viewer_may_read_but_not_select_or_set_fees(gsy_server: GsyServer):
    token = gsy_server.token("viewer")
    agg = gsy_server.post(
        f"{gsy_server.aggregator_prefix}create-aggregator/", token, {"name": "peek"}
    ).json()["uuid"]
    registry = gsy_server.get(
        f"{gsy_server.url}/external-connection/configurations/{gsy_server.sim}/registry", token
    )
    assert registry.json()["registered"] is False
    community = gsy_server.market("Community")
    refused = gsy_server.post(
        f"{gsy_server.aggregator_prefix}select-aggregator/",
        token,
        {"aggregator_uuid": agg, "device_uuid": community},
    )
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    sock = gsy_server.socket(f"aggregator/{agg}/", token)
    body = {
        "aggregator_uuid": agg,
        "batch_commands": {community: [{"type": "grid_fees", "data": {"fee_const": 9}}]},
    }
    gsy_server.post(f"{gsy_server.aggregator_prefix}batch-commands/", token, body)
    (answer,) = sock.next().message["responses"][community]
    assert answer["error"] == "forbidden"
    assert gsy_server.store.fees_for_slot(gsy_server.running_slot() + 1).tolist()[1] == 1.0


def test_wrong_token_is_refused_on_http_and_on_the_websocket_upgrade(gsy_server: GsyServer):
    bad = gsy_server.get(f"{gsy_server.aggregator_prefix}list-aggregators/", "not-a-token")
    assert bad.status_code == 401 and bad.json()["detail"]
    token = gsy_server.token()
    agg = gsy_server.post(f"{gsy_server.aggregator_prefix}create-aggregator/", token, {"name": "dso"}).json()[
        "uuid"
    ]
    with pytest.raises(websockets.InvalidStatusCode) as refused:
        gsy_server.socket(f"aggregator/{agg}/", "not-a-token")
    assert refused.value.status_code == 401
    with pytest.raises(websockets.InvalidStatusCode) as unknown:
        gsy_server.socket("aggregator/00000000-0000-0000-0000-000000000000/", token)
    assert unknown.value.status_code == 404


def test_wrong_password_gets_401_with_a_detail(gsy_server: GsyServer):
    response = gsy_server.token_answer("operator", "nope")
    assert response.status_code == 401 and response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"aggregator_uuid": "00000000-0000-0000-0000-000000000000", "batch_commands": {}},
        {"batch_commands": {}},
    ],
    ids=["unknown-aggregator", "no-aggregator"],
)
def test_batch_for_an_unknown_aggregator_is_refused(gsy_server: GsyServer, body: dict):
    response = gsy_server.post(f"{gsy_server.aggregator_prefix}batch-commands/", gsy_server.token(), body)
    assert response.status_code in (400, 404) and response.json()["error"] in (
        "unknown_aggregator",
        "invalid_request",
    )


@pytest.mark.parametrize(
    "raw",
    [
        '{"aggregator_uuid": "A", "batch_commands": [1, 2]}',
        "{not json",
        '{"batch_commands": {"x": 1}}',
        "[1]",
        "NaN",
    ],
)
def test_malformed_batch_is_refused_and_nothing_changes(gsy_server: GsyServer, raw: str):
    token = gsy_server.token()
    agg = gsy_server.post(f"{gsy_server.aggregator_prefix}create-aggregator/", token, {"name": "dso"}).json()[
        "uuid"
    ]
    before = gsy_server.store.fees_for_slot(gsy_server.running_slot() + 1).tolist()
    response = requests.post(
        f"{gsy_server.aggregator_prefix}batch-commands/",
        data=raw.replace('"A"', json.dumps(agg)),
        headers=gsy_server.headers(token),
        timeout=10,
    )
    assert response.status_code == 400 and response.json()["error"] in ("invalid_json", "invalid_request")
    assert gsy_server.store.fees_for_slot(gsy_server.running_slot() + 1).tolist() == before


def test_unknown_simulation_and_other_graphql_get_clear_errors(gsy_server: GsyServer):
    token = gsy_server.token()
    wrong = gsy_server.get(
        f"{gsy_server.url}/external-connection/aggregator-api/other-sim/list-aggregators/", token
    )
    assert wrong.status_code == 404 and gsy_server.sim in wrong.json()["message"]
    other = requests.post(
        f"{gsy_server.url}/graphql/",
        json={"query": "{ aggregatorsList { name } }"},
        headers=gsy_server.headers(token),
        timeout=10,
    )
    assert other.status_code == 400 and "readConfiguration" in other.json()["errors"][0]["message"]


def test_market_client_commands_are_answered_on_the_market_socket(gsy_server: GsyServer):
    token, agg, _, uuids = connect_like_the_sdk(gsy_server, names=("Community",))
    market_socket = gsy_server.sockets[-1]
    gsy_server.close()
    community = uuids["Community"]
    prefix = f"{gsy_server.url}/external-connection/api/{gsy_server.sim}/{community}"
    posted = gsy_server.post(f"{prefix}/grid-fee/", token, {"fee_const": 6}, tid="direct-1")
    assert posted.status_code == 200 and posted.json()
    reply = market_socket.next().message
    assert reply["command"] == "grid_fees" and reply["transaction_id"] == "direct-1"
    assert reply["market_fee_const"] == "6.0"
    stats = gsy_server.get(f"{prefix}/dso-market-stats", token)
    assert stats.status_code == 200
    answer = market_socket.next().message
    assert answer["command"] == "dso_market_stats" and answer["name"] == "Community"
    assert "import" in answer["market_stats"]["area_throughput"]


def test_reply_reaches_a_socket_held_by_another_worker(gsy_server: GsyServer):
    """Two servers on one store (two gunicorn workers): the batch goes to one, the socket is on
    the other, and the reply still arrives, through the store's outbox."""
    other = gsy_server.another_worker()
    token, agg, agg_socket, uuids = connect_like_the_sdk(gsy_server, names=("Grid",))
    body = {
        "aggregator_uuid": agg,
        "batch_commands": {uuids["Grid"]: [{"type": "grid_fees", "data": {"fee_const": 7}}]},
    }
    posted = other.post(f"{other.aggregator_prefix}batch-commands/", other.token(), body)
    assert posted.status_code == 200
    reply = agg_socket.next(skip_events=("selected_by_device",)).message
    assert reply["transaction_id"] == posted.json()["transaction_id"]


def test_websockets_beyond_the_workers_share_get_503_and_leave_threads_for_http(gsy_server: GsyServer):
    wire = gsy_server.another_worker(WEB_THREADS="6")  # 2 sockets
    token = wire.token()
    agg = wire.post(f"{wire.aggregator_prefix}create-aggregator/", token, {"name": "dso"}).json()["uuid"]
    first = wire.socket(f"aggregator/{agg}/", token)
    wire.socket(f"aggregator/{agg}/", token)
    with pytest.raises(websockets.InvalidStatusCode) as refused:
        wire.socket(f"aggregator/{agg}/", token)
    assert refused.value.status_code == 503
    first.close()
    deadline = time.monotonic() + 10
    while True:  # the slot is free once the server has seen the close
        try:
            wire.socket(f"aggregator/{agg}/", token)
            break
        except websockets.InvalidStatusCode:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    for s in wire.sockets:
        s.close()


def test_stopping_server_closes_its_websockets_as_going_away(gsy_server: GsyServer):
    token = gsy_server.token()
    agg = gsy_server.post(f"{gsy_server.aggregator_prefix}create-aggregator/", token, {"name": "dso"}).json()[
        "uuid"
    ]
    sock = gsy_server.socket(f"aggregator/{agg}/", token)
    gsy_server.app.extensions["gridfee_stop"].set()
    sock._thread.join(10)
    assert not sock._thread.is_alive()
    assert sock.close_code == 1001


def test_market_event_waits_until_the_script_has_selected_all_its_markets(gsy_server: GsyServer):
    """The SDK refuses a batch naming a market it has not heard is selected: a slot that closes
    between two selections must not reach the script before the second one."""
    token = gsy_server.token()
    prefix = gsy_server.aggregator_prefix
    agg = gsy_server.post(f"{prefix}create-aggregator/", token, {"name": "dso"}).json()["uuid"]
    sock = gsy_server.socket(f"aggregator/{agg}/", token)
    grid, community = gsy_server.market("Grid"), gsy_server.market("Community")
    gsy_server.post(f"{prefix}select-aggregator/", token, {"aggregator_uuid": agg, "device_uuid": grid})
    gsy_server.close()  # the slot boundary falls between the two selections
    time.sleep(0.5)
    gsy_server.post(f"{prefix}select-aggregator/", token, {"aggregator_uuid": agg, "device_uuid": community})
    events = [sock.next().message for _ in range(3)]
    assert [e["event"] for e in events] == ["selected_by_device", "selected_by_device", "market"]


def test_scenario_end_sends_finish_and_no_slot_closes_after_it(tmp_path):
    """With ``days`` set the exchange ends after its last slot: the aggregator socket says
    ``finish`` (on which the SDK's scripts exit), the clock says finished, no slot closes."""
    from app.config import ROOT
    from app.exchange.grid import build_grid
    from app.exchange.runner import ExchangeRunner, ScenarioEnded
    from app.exchange.scenario import load_scenario
    from app.store.repo import ExchangeStore

    scenario = load_scenario(ROOT / "scenarios" / "challenge.yaml").model_copy(update={"days": 1})
    store = ExchangeStore.open(f"sqlite:///{tmp_path}/end.sqlite3", scenario, build_grid(scenario))
    runner = ExchangeRunner(store, slot_seconds=0.0)
    runner.resume()
    http, app = start_server(tmp_path, store)
    srv = GsyServer(
        f"http://127.0.0.1:{http.server_port}",
        app.extensions["gsy_compat"].simulation_id,
        store,
        runner,
        app,
        tmp_path,
    )
    try:
        token = srv.token()
        agg = srv.post(f"{srv.aggregator_prefix}create-aggregator/", token, {"name": "dso"}).json()["uuid"]
        srv.post(
            f"{srv.aggregator_prefix}select-aggregator/",
            token,
            {"aggregator_uuid": agg, "device_uuid": srv.market("Grid")},
        )
        sock = srv.socket(f"aggregator/{agg}/", token)
        assert sock.next().message["event"] == "selected_by_device"
        assert runner.run() == 96 and runner.finished  # fast-forward: the whole day, then it returns
        frame = sock.next(timeout=15, skip_events=("market",))
        assert frame.binary and frame.message["event"] == "finish"
        assert sock.quiet() == []  # once
        with pytest.raises(ScenarioEnded):
            runner.close_running_slot()
        assert runner.run() == 0
        api = requests.post(
            f"{srv.url}/api/v1/auth/token", json={"username": "operator", "password": "operator"}, timeout=10
        )
        clock = requests.get(
            f"{srv.url}/api/v1/clock",
            headers={"Authorization": f"Bearer {api.json()['access_token']}"},
            timeout=10,
        )
        assert clock.json()["finished"] is True
    finally:
        for s in srv.sockets:
            s.close()
        http.shutdown()
        store.engine.dispose()


def test_unselect_and_delete_aggregator(gsy_server: GsyServer):
    token, agg, agg_socket, uuids = connect_like_the_sdk(gsy_server, names=("Community",))
    assert agg_socket.next().message["event"] == "selected_by_device"
    prefix = gsy_server.aggregator_prefix
    body = {"aggregator_uuid": agg, "device_uuid": uuids["Community"]}
    unselected = gsy_server.post(f"{prefix}unselect-aggregator/", token, body)
    assert unselected.status_code == 200 and unselected.json()["status"] == "UNSELECTED"
    frame = agg_socket.next().message
    assert frame == {
        "event": "unselected_by_device",
        "aggregator_uuid": agg,
        "device_uuid": uuids["Community"],
    }
    registry = gsy_server.get(
        f"{gsy_server.url}/external-connection/configurations/{gsy_server.sim}/registry", token
    )
    assert registry.json()["children"][0]["aggregator_name"] is None
    listed = gsy_server.get(f"{prefix}list-aggregators/", token).json()
    assert [a["name"] for a in listed] == ["dso"] and listed[0]["devices"] == []
    deleted = gsy_server.post(f"{prefix}delete-aggregator/", token, {"aggregator_uuid": agg})
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert gsy_server.get(f"{prefix}list-aggregators/", token).json() == []
    batch = {
        "aggregator_uuid": agg,
        "batch_commands": {uuids["Community"]: [{"type": "dso_market_stats", "data": {}}]},
    }
    gone = gsy_server.post(f"{prefix}batch-commands/", token, batch)
    assert gone.status_code == 404 and gone.json()["error"] == "unknown_aggregator"
    again = gsy_server.post(f"{prefix}delete-aggregator/", token, {"aggregator_uuid": agg})
    assert again.status_code == 404


def test_aggregators_are_per_user(gsy_server: GsyServer):
    operator, viewer = gsy_server.token(), gsy_server.token("viewer")
    prefix = gsy_server.aggregator_prefix
    mine = gsy_server.post(f"{prefix}create-aggregator/", operator, {"name": "dso"}).json()["uuid"]
    assert gsy_server.post(f"{prefix}create-aggregator/", operator, {"name": "dso"}).json()["uuid"] == mine
    assert gsy_server.get(f"{prefix}list-aggregators/", viewer).json() == []
    stolen = gsy_server.post(f"{prefix}delete-aggregator/", viewer, {"aggregator_uuid": mine})
    assert stolen.status_code == 404
    with pytest.raises(websockets.InvalidStatusCode) as refused:
        gsy_server.socket(f"aggregator/{mine}/", viewer)
    assert refused.value.status_code == 404


def test_an_operator_granted_one_market_registers_selects_and_sets_only_that_one(gsy_server: GsyServer):
    import yaml
    from werkzeug.security import generate_password_hash

    users = gsy_server.tmp_path / "users.yaml"
    alice = {"username": "alice", "password_hash": generate_password_hash("alice"), "role": "grid_operator"}
    users.write_text(yaml.safe_dump({"users": [{**alice, "markets": ["Community"]}]}), encoding="utf-8")
    wire = gsy_server.another_worker(USERS_FILE=str(users))
    token = wire.token("alice")
    registry = wire.get(f"{wire.url}/external-connection/configurations/{wire.sim}/registry", token).json()
    assert registry["registered"] is False and registry["children"][0]["registered"] is True
    prefix = wire.aggregator_prefix
    agg = wire.post(f"{prefix}create-aggregator/", token, {"name": "alice-dso"}).json()["uuid"]
    grid, community = wire.market("Grid"), wire.market("Community")
    refused = wire.post(f"{prefix}select-aggregator/", token, {"aggregator_uuid": agg, "device_uuid": grid})
    assert refused.status_code == 403
    sock = wire.socket(f"aggregator/{agg}/", token)
    body = {
        "aggregator_uuid": agg,
        "batch_commands": {
            grid: [{"type": "grid_fees", "data": {"fee_const": 9}}],
            community: [{"type": "grid_fees", "data": {"fee_const": 3}}],
        },
    }
    assert wire.post(f"{prefix}batch-commands/", token, body).status_code == 200
    responses = sock.next().message["responses"]
    assert responses[grid][0]["error"] == "forbidden" and responses[community][0]["status"] == "ready"
    queued = gsy_server.store.fees_for_slot(gsy_server.running_slot() + 1).tolist()
    assert queued[:2] == [4.0, 3.0]
    for s in wire.sockets:
        s.close()
