"""Bad input gets a 4xx JSON error ``{"error", "message"}`` (never HTML, never a 500) and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from itsdangerous import TimestampSigner

from .helpers import API, Exchange, assert_error, build_exchange, grid_fees


@pytest.fixture(scope="module")
def ex(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    """One exchange for the module (slot 0 closed, slot 1 running): no test here may change it."""
    exchange = build_exchange(tmp_path_factory.mktemp("bad-input"))
    exchange.close()
    yield exchange
    exchange.store.engine.dispose()


def assert_nothing_changed(ex: Exchange) -> None:
    assert ex.store.fee_history() == []
    initial = ex.store.grid.initial_fee_ct_per_kwh.tolist()
    running = ex.store.clock_state().running_slot
    assert ex.fees(running) == ex.fees(running + 1) == initial


def post_raw(ex: Exchange, body: str | bytes, content_type: str = "application/json"):
    return ex.post("/batch-commands", data=body, content_type=content_type)


def fee_batch(ex: Exchange, fee: object) -> dict:
    return {"batch_commands": {ex.communities[0]: [grid_fees(fee)]}}


# -- the body -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    ['{"batch_commands": ', "{'batch_commands': {}}", "", "\x00", b"\xff\xfe{", "[" * 100_000],
    ids=["truncated", "single-quotes", "empty", "nul", "not-utf8", "nested-too-deep"],
)
def test_malformed_json_body_is_refused(ex: Exchange, body: str | bytes):
    assert_error(post_raw(ex, body), 400, "invalid_json")
    assert_nothing_changed(ex)


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/batch-commands", "text/plain"),
        ("/batch-commands", "application/x-www-form-urlencoded"),
        ("/auth/token", "text/plain"),
    ],
)
def test_body_that_is_not_json_content_is_refused_with_415(ex: Exchange, path: str, content_type: str):
    body = json.dumps(fee_batch(ex, 3))
    response = ex.client.post(API + path, data=body, content_type=content_type, headers=ex.auth())
    assert_error(response, 415, "unsupported_media_type")
    assert_nothing_changed(ex)


@pytest.mark.parametrize(
    "body",
    [
        [],
        "batch",
        {"batch_commands": []},
        {"batch_commands": "x"},
        {"batch_commands": {"u": {"type": "x"}}},
        {"batch_commands": {"u": ["grid_fees"]}},
        {"batch_commands": {"u": [None]}},
        {"batch_commands": {"u": []}, "transaction_id": ""},
        {"batch_commands": {"u": []}, "transaction_id": 7},
    ],
    ids=[
        "list",
        "string",
        "commands-list",
        "commands-string",
        "commands-not-lists",
        "command-string",
        "command-null",
        "transaction-id-empty",
        "transaction-id-number",
    ],
)
def test_batch_commands_that_are_not_an_object_of_lists_are_refused(ex: Exchange, body: object):
    assert_error(ex.post("/batch-commands", json=body), 400, "invalid_request")
    assert_nothing_changed(ex)


def test_batch_with_unknown_top_level_keys_is_refused(ex: Exchange):
    body = {**fee_batch(ex, 3), "commit": True}
    assert_error(ex.post("/batch-commands", json=body), 400, "invalid_request")
    assert_nothing_changed(ex)


@pytest.mark.parametrize(
    "fee",
    ["3", "abc", True, None, [3], {"value": 3}, 10**400],
    ids=["'3'", "abc", "true", "null", "list", "object", "10**400"],
)
def test_fee_that_is_not_a_number_is_refused(ex: Exchange, fee: object):
    body = assert_error(ex.post("/batch-commands", json=fee_batch(ex, fee)), 400, "invalid_fee")
    (answer,) = body["responses"][ex.communities[0]]
    assert answer["status"] == "error" and answer["error"] == "invalid_fee" and answer["error_message"]
    assert_nothing_changed(ex)


def test_number_too_large_for_a_float_is_refused(ex: Exchange):
    body = json.dumps(fee_batch(ex, 12345)).replace("12345", "1e400")  # parses as inf
    assert_error(post_raw(ex, body), 400, "invalid_fee")
    assert_nothing_changed(ex)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_refused(ex: Exchange, literal: str):
    body = json.dumps(fee_batch(ex, 12345)).replace("12345", literal)
    assert literal in body
    assert_error(post_raw(ex, body), 400, "invalid_json")
    assert_nothing_changed(ex)


def test_negative_fee_is_refused(ex: Exchange):
    body = assert_error(ex.post("/batch-commands", json=fee_batch(ex, -0.5)), 400, "negative_fee")
    assert body["responses"][ex.communities[0]][0]["error"] == "negative_fee"
    assert_nothing_changed(ex)


def test_fee_above_the_configured_maximum_is_refused(make_exchange):
    ex = make_exchange()
    ex.close()
    maximum = ex.scenario.fee_limits.max_ct_per_kwh
    body = assert_error(
        ex.post("/batch-commands", json=fee_batch(ex, maximum + 0.01)), 400, "fee_above_maximum"
    )
    assert body["responses"][ex.communities[0]][0]["status"] == "error"
    assert_nothing_changed(ex)
    assert (
        ex.batch({ex.communities[0]: [grid_fees(maximum)]}).status_code == 200
    )  # the maximum itself is fine


def test_fee_for_an_unknown_market_is_refused(ex: Exchange):
    response = ex.batch({"00000000-0000-0000-0000-000000000000": [grid_fees(3)]})
    assert_error(response, 404, "unknown_market")
    assert_nothing_changed(ex)


@pytest.mark.parametrize(
    "command",
    [{"type": "set_price", "data": {}}, {"data": {"fee_const": 3}}, {"type": 3}],
    ids=["unknown-type", "no-type", "type-not-string"],
)
def test_unknown_command_type_is_refused(ex: Exchange, command: object):
    response = ex.batch({ex.communities[0]: [command]})
    assert_error(response, 400, "unknown_command")
    assert_nothing_changed(ex)


def test_command_with_unknown_fields_is_refused(ex: Exchange):
    command = {"type": "grid_fees", "data": {"fee_const": 3, "fee_var": 1}}
    assert_error(ex.batch({ex.communities[0]: [command]}), 400, "invalid_fee")
    assert_nothing_changed(ex)


def test_batch_larger_than_the_limit_is_refused_with_413(make_exchange):
    ex = make_exchange({"MAX_BATCH_COMMANDS": "5"})
    ex.close()
    a, b = ex.communities
    response = ex.batch({a: [grid_fees(3)] * 3, b: [grid_fees(4)] * 3})
    assert_error(response, 413, "batch_too_large")
    assert_nothing_changed(ex)
    assert ex.batch({a: [grid_fees(3)] * 3, b: [grid_fees(4)] * 2}).status_code == 200  # 5 is fine


# -- slots and parameters -----------------------------------------------------------------


@pytest.mark.parametrize(
    "slots",
    [
        "yesterday",
        ["2026-06-21T00:00", "2026-06-21 00:15"],
        "2026-06-21T00:07",
        "2020-01-01T00:00",
        "2026-13-01T00:00",
        7,
    ],
    ids=["word", "one-bad-in-list", "not-a-slot-start", "before-start", "no-such-date", "number"],
)
def test_bad_slot_string_in_market_slots_is_refused(ex: Exchange, slots: object):
    command = {"type": "dso_market_stats", "data": {"market_slots": slots}}
    body = assert_error(ex.batch({ex.communities[0]: [command]}), 400)
    assert body["error"] in ("bad_slot", "invalid_command")
    assert_nothing_changed(ex)


@pytest.mark.parametrize(
    "params",
    [
        {"from": "yesterday"},
        {"to": "2026-06-21T00:07"},
        {"from": "2026-06-21T00:30", "to": "2026-06-21T00:15"},
    ],
    ids=["from-word", "to-not-a-slot-start", "from-after-to"],
)
def test_bad_slot_in_history_range_is_refused(ex: Exchange, params: dict):
    body = assert_error(ex.get(f"/markets/{ex.communities[0]}/history", query_string=params), 400)
    assert body["error"] in ("bad_slot", "bad_range")
    assert_nothing_changed(ex)


def test_history_of_an_unknown_market_is_404(ex: Exchange):
    assert_error(ex.get("/markets/no-such-market/history"), 404, "unknown_market")


@pytest.mark.parametrize("wait", ["abc", "999", "-1", "nan", "inf", ""])
def test_bad_wait_on_market_cycles_is_refused(ex: Exchange, wait: str):
    assert_error(ex.get("/market-cycles", query_string={"wait": wait}), 400, "bad_parameter")


def test_bad_after_on_market_cycles_is_refused(ex: Exchange):
    assert_error(ex.get("/market-cycles", query_string={"after": "2026-06-21T00:07"}), 400, "bad_slot")


# -- paths, methods, tokens ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/markets", "/markets//history", "/batch-commands/1"])
def test_unknown_api_path_is_a_json_404(ex: Exchange, path: str):
    assert_error(ex.get(path), 404, "not_found")


def test_wrong_method_is_a_json_405(ex: Exchange):
    assert_error(ex.get("/batch-commands"), 405, "method_not_allowed")
    assert_error(ex.post("/clock", json={}), 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/clock"), ("GET", "/grid"), ("GET", "/market-cycles"), ("POST", "/batch-commands")],
)
def test_missing_token_is_401(ex: Exchange, method: str, path: str):
    response = ex.client.open(API + path, method=method, json=fee_batch(ex, 3))
    assert_error(response, 401, "missing_token")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_nothing_changed(ex)


@pytest.mark.parametrize(
    "header", ["Bearer garbage", "Bearer ", "Basic b3BlcmF0b3I6b3BlcmF0b3I=", "garbage"], ids=repr
)
def test_garbage_token_is_401(ex: Exchange, header: str):
    response = ex.client.post(
        f"{API}/batch-commands", json=fee_batch(ex, 3), headers={"Authorization": header}
    )
    assert_error(response, 401, "invalid_token")
    assert_nothing_changed(ex)


def test_token_signed_with_another_key_is_401(make_exchange):
    ex = make_exchange()
    other = make_exchange({"SECRET_KEY": "another"})
    response = ex.client.get(f"{API}/clock", headers=other.auth())
    assert_error(response, 401, "invalid_token")


def test_expired_token_is_401(make_exchange, monkeypatch: pytest.MonkeyPatch):
    ex = make_exchange({"TOKEN_TTL_S": "1"})
    headers = ex.auth()
    assert ex.client.get(f"{API}/clock", headers=headers).status_code == 200
    issued_at = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: issued_at(self) + 5)  # 5 s later
    assert_error(ex.client.get(f"{API}/clock", headers=headers), 401, "token_expired")
    response = ex.client.post(f"{API}/batch-commands", json=fee_batch(ex, 3), headers=headers)
    assert_error(response, 401, "token_expired")
    assert_nothing_changed(ex)


def test_empty_or_oversized_credentials_are_refused(ex: Exchange):
    for body in (
        {"username": "", "password": "x"},
        {"username": "operator"},
        {"username": "x" * 201, "password": "x"},
    ):
        assert_error(ex.client.post(f"{API}/auth/token", json=body), 400, "invalid_request")
