"""``/api/v1/openapi.json``, generated from the pydantic models the routes validate with."""

from __future__ import annotations

from functools import lru_cache

from pydantic import TypeAdapter
from pydantic.json_schema import models_json_schema

from app.api import models as m

REF = "#/components/schemas/{model}"


def _ref(model: type) -> dict:
    return {"$ref": REF.format(model=model.__name__)}


def _json(model: type, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _errors(*codes: int) -> dict:
    text = {
        400: "bad input (malformed JSON, wrong types, NaN, bad slot string, bad parameter)",
        401: "missing, wrong or expired token / wrong password",
        403: "not allowed for this user",
        404: "unknown market",
        413: "body larger than MAX_BODY_BYTES (body_too_large), batch with more commands than "
        "MAX_BATCH_COMMANDS (batch_too_large) or reading more market slots in all than MAX_BATCH_SLOTS "
        "(batch_too_costly); the message names the limit",
        422: "a stats command asks for more market_slots than MAX_MARKET_SLOTS (too_many_slots); the "
        "message names the limit; nothing of the batch was done",
        415: "body is not JSON",
        429: "too many requests from this client; retry after the Retry-After header's seconds",
    }
    return {str(c): _json(m.ErrorResponse, text[c]) for c in codes}


def _query(name: str, description: str, schema: dict) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


SLOT = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$"}


@lru_cache(maxsize=1)
def openapi_document() -> dict:
    response_models = [
        m.ErrorResponse,
        m.TokenResponse,
        m.ClockResponse,
        m.GridResponse,
        m.MarketCyclesResponse,
        m.BatchResponse,
        m.BatchErrorResponse,
        m.HistoryResponse,
        m.DsoMarketStats,
    ]
    request_models = [m.TokenRequest, m.BatchRequest]
    _, defs = models_json_schema(
        [(x, "serialization") for x in response_models] + [(x, "validation") for x in request_models],
        ref_template=REF,
    )
    schemas = defs.get("$defs", {})
    command = TypeAdapter(m.Command).json_schema(ref_template=REF)
    schemas.update(command.pop("$defs", {}))
    schemas["Command"] = command
    auth = [{"bearer": []}]
    batch_ok = _json(m.BatchResponse, "one response per command, in order")
    paths = {
        "/api/v1/auth/token": {
            "post": {
                "summary": "Exchange username and password for a bearer token",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(m.TokenRequest)}},
                },
                "responses": {"200": _json(m.TokenResponse, "a token"), **_errors(400, 401, 415, 429)},
            }
        },
        "/api/v1/clock": {
            "get": {
                "summary": "Running slot, last closed slot, and the deadline for next-slot fees",
                "security": auth,
                "responses": {"200": _json(m.ClockResponse, "the clock"), **_errors(401)},
            }
        },
        "/api/v1/grid": {
            "get": {
                "summary": "The grid tree with each market's fee in force and queued",
                "security": auth,
                "responses": {"200": _json(m.GridResponse, "the grid"), **_errors(401)},
            }
        },
        "/api/v1/market-cycles": {
            "get": {
                "summary": "Market cycles after a slot (long-poll)",
                "security": auth,
                "parameters": [
                    _query("after", "return the cycles after this slot (default: the latest one)", SLOT),
                    _query(
                        "wait",
                        "seconds to wait when there is none yet (0-30)",
                        {"type": "number", "minimum": 0, "maximum": 30},
                    ),
                ],
                "responses": {
                    "200": _json(m.MarketCyclesResponse, "cycles, oldest first"),
                    **_errors(400, 401),
                },
            }
        },
        "/api/v1/batch-commands": {
            "post": {
                "summary": "market_stats, dso_market_stats and grid_fees for several markets at once",
                "security": auth,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(m.BatchRequest)}},
                },
                "responses": {
                    "200": batch_ok,
                    **{
                        str(code): _json(m.BatchErrorResponse, "every command failed: " + text)
                        for code, text in ((403, "none allowed"), (404, "unknown markets"))
                    },
                    "400": {
                        "description": "malformed batch, or every command failed",
                        "content": {
                            "application/json": {
                                "schema": {"anyOf": [_ref(m.ErrorResponse), _ref(m.BatchErrorResponse)]}
                            }
                        },
                    },
                    **_errors(401, 413, 415, 422),
                },
            }
        },
        "/api/v1/markets/{area_uuid}/history": {
            "get": {
                "summary": "Per-slot statistics of one market (backfill after a restart)",
                "security": auth,
                "parameters": [
                    {"name": "area_uuid", "in": "path", "required": True, "schema": {"type": "string"}},
                    _query("from", "first slot (inclusive)", SLOT),
                    _query("to", "last slot (inclusive)", SLOT),
                ],
                "responses": {
                    "200": _json(m.HistoryResponse, "rows, oldest first"),
                    **_errors(400, 401, 404),
                },
            }
        },
        "/api/v1/openapi.json": {
            "get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1 document"}}}
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Grid Fee Console: Grid Operator API",
            "version": "1.0.0",
            "description": "Rates and fees in ct/kWh, energy in kWh, revenue in ct, self-sufficiency in %. "
            "A grid_fees command received while slot N runs applies from slot N+1.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
