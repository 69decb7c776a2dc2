"""No server error for any input on the SDK face: random bodies, batches and queries (Hypothesis).

Every answer is JSON with a status below 500; a batch, whatever it holds, never changes a fee
it should not (the only fees that may change are valid ``fee_const`` values for known markets).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from app.config import ROOT, Settings
from app.entry.web import create_app
from app.exchange.grid import build_grid
from app.exchange.scenario import load_scenario
from app.store.repo import ExchangeStore

SIM = "fuzz-sim"
EXAMPLES = 60

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def face(tmp_path_factory: pytest.TempPathFactory):
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    scenario = load_scenario(ROOT / "scenarios" / "challenge.yaml")
    store = ExchangeStore.open(f"sqlite:///{tmp}/fuzz.sqlite3", scenario, build_grid(scenario))
    settings_ = Settings.from_env(
        {"INSTANCE_DIR": str(tmp), "SECRET_KEY": "fuzz", "GSY_SIMULATION_ID": SIM, "TOKEN_RATE_LIMIT": "0"}
    )
    app = create_app(settings_, store=store, dashboard=False)
    client = app.test_client()
    token = client.post("/api-token-auth/", json={"username": "operator", "password": "operator"}).json[
        "access"
    ]
    headers = {"Authorization": f"JWT {token}", "Content-Type": "application/json"}
    agg = client.post(
        f"/external-connection/aggregator-api/{SIM}/create-aggregator/", json={"name": "dso"}, headers=headers
    ).json["uuid"]
    yield client, headers, agg, store
    store.engine.dispose()


def markets(store: ExchangeStore) -> list[str]:
    return [m.uuid for m in store.grid.markets[:2]]


def assert_json_below_500(response) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.is_json, response.get_data(as_text=True)[:200]


PATHS = [
    ("POST", "/api-token-auth/"),
    ("GET", f"/external-connection/aggregator-api/{SIM}/list-aggregators/"),
    ("POST", f"/external-connection/aggregator-api/{SIM}/create-aggregator/"),
    ("POST", f"/external-connection/aggregator-api/{SIM}/delete-aggregator/"),
    ("POST", f"/external-connection/aggregator-api/{SIM}/select-aggregator/"),
    ("POST", f"/external-connection/aggregator-api/{SIM}/unselect-aggregator/"),
    ("POST", f"/external-connection/aggregator-api/{SIM}/batch-commands/"),
    ("GET", f"/external-connection/configurations/{SIM}/registry"),
    ("POST", "/graphql/"),
]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(PATHS), body=json_values, raw=st.booleans(), junk=st.binary(max_size=40))
def test_any_body_on_any_endpoint_gets_json_below_500(face, path, body, raw, junk):
    client, headers, _agg, _store = face
    method, url = path
    data = junk if raw else json.dumps(body)
    response = client.open(url, method=method, data=data, headers=headers)
    assert_json_below_500(response)


fee = st.one_of(
    st.floats(min_value=0, max_value=2000), st.integers(min_value=0, max_value=2000), json_scalars
)
command = st.one_of(
    st.fixed_dictionaries({"type": st.just("grid_fees"), "data": st.fixed_dictionaries({"fee_const": fee})}),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["grid_fees", "dso_market_stats", "market_stats", "nope"]) | json_scalars},
        optional={"data": json_values},
    ),
)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batch=st.dictionaries(
        st.one_of(st.sampled_from(["m0", "m1"]), st.text(max_size=40)),
        st.lists(st.one_of(command, json_values), max_size=4),
        max_size=3,
    )
)
def test_any_batch_is_answered_and_changes_only_valid_fees(face, batch):
    client, headers, agg, store = face
    uuids = markets(store)
    batch = {uuids[int(k[1])] if k in ("m0", "m1") else k: v for k, v in batch.items()}
    running = store.clock_state().running_slot
    before = store.fees_for_slot(running + 1).tolist()
    response = client.post(
        f"/external-connection/aggregator-api/{SIM}/batch-commands/",
        data=json.dumps({"aggregator_uuid": agg, "batch_commands": batch}),
        headers=headers,
    )
    assert_json_below_500(response)
    after = store.fees_for_slot(running + 1).tolist()
    limit = store.scenario.fee_limits.max_ct_per_kwh
    for index, uuid in enumerate(uuids):
        sent = [
            c["data"].get("fee_const")
            for c in batch.get(uuid, [])
            if isinstance(c, dict) and c.get("type") == "grid_fees" and isinstance(c.get("data"), dict)
        ]
        valid = [
            float(f)
            for f in sent
            if isinstance(f, int | float) and not isinstance(f, bool) and math.isfinite(f) and 0 <= f <= limit
        ]
        # unchanged, or one of the valid fees the batch carried for that market
        assert after[index] in [before[index], *valid], (uuid, sent, before[index], after[index])
        if after[index] != before[index]:
            event("a fee changed")  # the statistics show how often a batch carried a new valid fee
