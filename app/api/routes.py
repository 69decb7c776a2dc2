"""The Grid Operator API blueprint (``/api/v1``): HTTP in, ``ExchangeService`` calls, JSON out.

Every error is ``{"error": code, "message": sentence}`` with a 4xx status; bad input never gives
an HTML page or a 500. The blueprint finds its service, users and token signer in
``current_app.extensions["gridfee"]`` (see ``app.create_app``), so it holds no state itself.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import NoReturn

import orjson
from flask import Blueprint, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import ValidationError

from app.api.auth import AuthError, TokenSigner, User, UserBook, bearer_token
from app.api.models import BatchRequest, TokenRequest
from app.api.openapi import openapi_document
from app.api.service import ApiError, ExchangeService, batch_status

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")
MAX_WAIT_S = 30.0


@dataclass
class ApiContext:
    service: ExchangeService | None  # None: the exchange is remote (GRID_API_URL), no API here
    users: UserBook
    signer: TokenSigner


def ctx() -> ApiContext:
    return current_app.extensions["gridfee"]


def json_response(obj: object) -> Response:
    """``jsonify(obj)`` for the large answers (a batch of 500 markets, a day of cycles), with
    orjson: the same JSON (keys in the app's order, one line, a newline at the end) in a
    fraction of the time. Falls back to ``jsonify`` for what orjson does not take (e.g. a key
    that is not a string)."""
    option = orjson.OPT_APPEND_NEWLINE
    if getattr(current_app.json, "sort_keys", False):
        option |= orjson.OPT_SORT_KEYS
    try:
        body = orjson.dumps(obj, option=option)
    except orjson.JSONEncodeError:
        return jsonify(obj)
    return current_app.response_class(body, mimetype="application/json")


def error(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify(error=code, message=message), status


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> ResponseReturnValue:
    return error(exc.status, exc.code, exc.message)


@bp.errorhandler(AuthError)
def _auth_error(exc: AuthError) -> ResponseReturnValue:
    response, status = error(exc.status, exc.code, exc.message)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="grid-operator-api"'
    return response, status


def _reject_constant(name: str) -> NoReturn:
    raise ApiError(400, "invalid_json", f"{name} is not allowed in JSON; send a finite number")


def json_body() -> object:
    if not request.is_json:
        raise ApiError(
            415, "unsupported_media_type", "send the body as JSON (Content-Type: application/json)"
        )
    raw = request.get_data(cache=True)
    try:
        return orjson.loads(raw)  # what it refuses, json below refuses with the reason, or reads
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "the body is nested too deeply") from None


def batch_request(raw: object) -> BatchRequest:
    """``BatchRequest.model_validate(raw)``, without the copy of every command pydantic makes
    when ``raw`` plainly is one (JSON's dicts, lists and strings of the right shapes): that copy
    was most of a 500-market batch's time. Anything else goes through pydantic, errors too."""
    if type(raw) is dict and "batch_commands" in raw and raw.keys() <= {"batch_commands", "transaction_id"}:
        commands, tid = raw["batch_commands"], raw.get("transaction_id")
        plain = type(commands) is dict and (tid is None or (type(tid) is str and 1 <= len(tid) <= 200))
        plain = plain and all(
            type(area) is str
            and type(listed) is list
            and all(type(c) is dict and all(type(k) is str for k in c) for c in listed)
            for area, listed in commands.items()
        )
        if plain:
            return BatchRequest.model_construct(**raw)
    return BatchRequest.model_validate(raw)


def validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


def current_user() -> User:
    c = ctx()
    return c.signer.verify(bearer_token(request.headers.get("Authorization")), c.users)


@bp.post("/auth/token")
def token() -> ResponseReturnValue:
    # rate-limited per client address (TOKEN_RATE_LIMIT, Flask-Limiter: app.security)
    try:
        body = TokenRequest.model_validate(json_body())
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", validation_message(exc)) from None
    c = ctx()
    user = c.users.check_password(body.username, body.password)
    return jsonify(
        access_token=c.signer.issue(user),
        token_type="Bearer",
        expires_in=c.signer.ttl_s,
        username=user.username,
        role=user.role,
    )


@bp.get("/clock")
def clock() -> ResponseReturnValue:
    current_user()
    return jsonify(ctx().service.clock_info())


@bp.get("/grid")
def grid() -> ResponseReturnValue:
    current_user()
    return json_response(ctx().service.grid_tree())


def _float_arg(name: str, default: float, lo: float, hi: float) -> float:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ApiError(400, "bad_parameter", f"{name} must be a number of seconds, got {raw!r}") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise ApiError(400, "bad_parameter", f"{name} must be between {lo:g} and {hi:g}")
    return value


@bp.get("/market-cycles")
def market_cycles() -> ResponseReturnValue:
    current_user()
    wait = _float_arg("wait", 0.0, 0.0, MAX_WAIT_S)
    return json_response(ctx().service.market_cycles(request.args.get("after"), wait))


@bp.post("/batch-commands")
def batch_commands() -> ResponseReturnValue:
    user = current_user()
    try:
        body = batch_request(json_body())
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", validation_message(exc)) from None
    response, replayed = ctx().service.run_batch(
        user, body.batch_commands, body.transaction_id, source=f"api:{user.username}"
    )
    failed = batch_status(response)
    if failed is not None:
        status, code, message = failed
        out = jsonify(error=code, message=message, **response)
        out.status_code = status
    else:
        out = json_response(response)
    if replayed:
        out.headers["Idempotent-Replay"] = "true"
    return out


@bp.get("/markets/<area_uuid>/history")
def history(area_uuid: str) -> ResponseReturnValue:
    current_user()
    return json_response(ctx().service.history(area_uuid, request.args.get("from"), request.args.get("to")))


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    return jsonify(openapi_document())
