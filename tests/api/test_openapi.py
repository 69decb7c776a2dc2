"""``/api/v1/openapi.json`` is a valid OpenAPI document, and the server keeps to it.

Schemathesis generates requests from the document (valid ones and, in negative mode, invalid
ones) and checks every answer: no 5xx, only documented status codes and content types, and a
body that matches the documented schema. A few hundred cases in all, with the operator's token.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.api.openapi import openapi_document

from .helpers import API, Exchange, build_exchange

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_WAIT_S = 0.05  # long-polls generated with a longer wait are cut to this, to keep the run short


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exchange]:
    """An exchange with three closed slots and a fee queued, shared by the generated cases."""
    ex = build_exchange(tmp_path_factory.mktemp("openapi"))
    ex.close(3)
    ex.batch({ex.communities[0]: [{"type": "grid_fees", "data": {"fee_const": 3}}]})
    yield ex
    ex.store.engine.dispose()


# The document the server serves (``test_openapi_document_is_valid`` checks that it is this one),
# loaded at import so that ``@schema.parametrize()`` needs no app; the cases are sent to the app
# of the ``api`` fixture. (``schemathesis.pytest.from_fixture`` would load it from the app, but
# schemathesis 4.32 sets ``Function._nodeid`` there, which pytest 9.2 no longer has.)
schema = schemathesis.openapi.from_dict(openapi_document())


def test_openapi_document_is_valid(api: Exchange):
    document = api.client.get(f"{API}/openapi.json").get_json()
    assert document == json.loads(json.dumps(openapi_document()))
    validate(document)  # raises when invalid
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def _short_wait(value: object) -> object:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return value
    return MAX_WAIT_S if math.isfinite(seconds) and seconds > MAX_WAIT_S else value


def _aim_at_real_markets(case: schemathesis.Case, uuids: list[str]) -> None:
    """Point three in four generated market uuids at markets of the exchange.

    Random strings would only ever reach "unknown market"; this way the stats, fees and history
    of real markets (and their response schemas) are exercised too, and unknown ones still are.
    """

    def aim(value: object) -> object:
        if not isinstance(value, str):
            return value
        pick = zlib.crc32(value.encode("utf-8", "surrogatepass"))
        return uuids[pick % len(uuids)] if pick % 4 else value

    if isinstance(case.path_parameters, dict) and "area_uuid" in case.path_parameters:
        case.path_parameters["area_uuid"] = aim(case.path_parameters["area_uuid"])
    if isinstance(case.body, dict) and isinstance(case.body.get("batch_commands"), dict):
        case.body["batch_commands"] = {aim(k): v for k, v in case.body["batch_commands"].items()}


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_keeps_to_its_openapi_document(case: schemathesis.Case, api: Exchange):
    if isinstance(case.query, dict) and "wait" in case.query:
        case.query["wait"] = _short_wait(case.query["wait"])
    _aim_at_real_markets(case, api.market_uuids)
    case.call_and_validate(app=api.app, headers=api.auth(), checks=CHECKS)
