"""The SDK's endpoints (reference §1.4) and websockets (§1.5), over our store and fee book.

Conventions the SDK depends on and that differ from ``/api/v1``: ``Authorization: JWT <token>``;
JSON bodies on GET; POST paths end in ``/`` and some GET paths do not (both are accepted here);
a call that starts asynchronous work answers 2xx with a truthy JSON object, and the real answer
comes later as a binary UTF-8 JSON frame on the websocket, matched by ``transaction_id``.
Errors are JSON ``{"error", "message", "detail"}`` with a 4xx status (``detail`` is what a
Django REST backend like gsy-web says, and what the SDK logs).
"""

from __future__ import annotations

import json
import math
import socket
import time
import uuid as uuidlib
from typing import NoReturn

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from flask_sock import Sock
from simple_websocket import ConnectionClosed, Server

from app.api.auth import AuthError, User, bearer_token
from app.api.errors import HttpError
from app.api.gsy_compat import protocol
from app.api.gsy_compat.face import GsyFace
from app.api.gsy_compat.store import aggregator_channel, area_channel
from app.store.notify import Subscription

bp = Blueprint("gsy_compat", __name__)
sock = Sock()
AGG = "/external-connection/aggregator-api/<sim>"
MARKET = "/external-connection/api/<sim>/<area>"
PREFIXES = ("/api-token-auth", "/external-connection/", "/external-ws/", "/graphql")
MAX_NAME = 200
GOING_AWAY = 1001  # websocket close code: the server is going down
# A script selects its markets one after the other, some 0.3-0.8 s apart; a market event between
# two selections makes the SDK refuse its batch ("not in list of selected device uuids"), so the
# event waits until the selections have been quiet this long.
SELECTION_SETTLE_S = 1.5
STOP_CHECK_S = 0.5  # how often a waiting socket looks whether the process stops (no store read)
SOCKET_POLL_S = 0.2  # SQLite alone: how often a socket reads the outbox and the clock (2 reads)


class GsyError(HttpError):
    """A request the Grid Singularity face refuses."""


def face() -> GsyFace:
    return current_app.extensions["gsy_compat"]


def error(status: int, code: str, message: str) -> ResponseReturnValue:
    return jsonify(error=code, message=message, detail=message), status


@bp.errorhandler(HttpError)  # GsyError, and the ApiError or AuthError of the code it calls
def _error(exc: HttpError) -> ResponseReturnValue:
    return error(exc.status, exc.code, exc.message)


def body() -> dict:
    """The JSON object of the request; GETs carry one too (the SDK's ``transaction_id``)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise GsyError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise GsyError(400, "invalid_json", "the body is nested too deeply") from None
    if not isinstance(value, dict):
        raise GsyError(400, "invalid_json", "the body must be a JSON object")
    return value


def _reject_constant(name: str) -> NoReturn:
    raise GsyError(400, "invalid_json", f"{name} is not allowed in JSON; send a finite number")


def text_field(data: dict, key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise GsyError(
            400, "invalid_request", f"'{key}' must be a non-empty string of at most {MAX_NAME} characters"
        )
    return value


def transaction_id(data: dict) -> str:
    tid = data.get("transaction_id")
    if tid is None:
        return str(uuidlib.uuid4())
    if not isinstance(tid, str) or not 0 < len(tid) <= MAX_NAME:
        raise GsyError(400, "invalid_request", "'transaction_id' must be a string of at most 200 characters")
    return tid


def user() -> User:
    f = face()
    return f.signer.verify(bearer_token(request.headers.get("Authorization")), f.users)


def check_simulation(sim: str) -> None:
    known = face().simulation_id
    if sim != known:
        raise GsyError(
            404, "unknown_simulation", f"no simulation {sim!r} here; this exchange's simulation id is {known}"
        )


def aggregator_request(sim: str) -> tuple[User, dict, dict]:
    """The caller, the request's body and the caller's aggregator it names (``aggregator_uuid``)."""
    who = user()
    check_simulation(sim)
    data = body()
    agg_uuid = text_field(data, "aggregator_uuid")
    found = face().gsy.aggregator(who.username, agg_uuid)
    if found is None:
        raise GsyError(404, "unknown_aggregator", f"user {who.username!r} has no aggregator {agg_uuid!r}")
    return who, data, found


# -- auth ---------------------------------------------------------------------------------------
@bp.post("/api-token-auth/", strict_slashes=False)
def token() -> ResponseReturnValue:
    f = face()  # rate-limited per client address with /api/v1/auth/token (app.security)
    data = body()
    username, password = data.get("username"), data.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
        raise GsyError(400, "invalid_request", 'send {"username": ..., "password": ...}')
    who = f.users.check_password(username, password)
    jwt = f.signer.issue(who)
    # "access" is what the SDK reads since 2025; "token" is what older SDKs read
    return jsonify(access=jwt, token=jwt, refresh=jwt, username=who.username, role=who.role)


# -- aggregators (A2-A4, M1-M2) -------------------------------------------------------------
@bp.route(f"{AGG}/list-aggregators/", methods=["GET", "POST"], strict_slashes=False)
def list_aggregators(sim: str) -> ResponseReturnValue:
    who = user()
    check_simulation(sim)
    body()
    return jsonify(face().gsy.aggregators(who.username))


@bp.post(f"{AGG}/create-aggregator/", strict_slashes=False)
def create_aggregator(sim: str) -> ResponseReturnValue:
    who = user()
    check_simulation(sim)
    name = text_field(body(), "name")
    f = face()
    owned = len(f.gsy.aggregators(who.username))
    if owned >= f.max_aggregators:
        raise GsyError(
            429,
            "too_many_aggregators",
            f"user {who.username!r} owns {owned} aggregators, the most one user may "
            f"(MAX_AGGREGATORS_PER_USER = {f.max_aggregators}); delete one first",
        )
    made = f.gsy.create(who.username, name)
    return jsonify(uuid=made["uuid"], name=made["name"], created=made["created"])


@bp.post(f"{AGG}/delete-aggregator/", strict_slashes=False)
def delete_aggregator(sim: str) -> ResponseReturnValue:
    who, data, found = aggregator_request(sim)
    face().gsy.delete(who.username, found["uuid"])
    return jsonify(aggregator_uuid=found["uuid"], deleted=True, transaction_id=transaction_id(data))


def _selection(sim: str, selected: bool) -> ResponseReturnValue:
    who, data, found = aggregator_request(sim)
    device = text_field(data, "device_uuid")
    f = face()
    name = f.market_name(device)
    if name is None:
        raise GsyError(404, "unknown_market", f"no market with uuid {device!r}")
    if selected and device not in f.may_manage(who):
        raise GsyError(403, "forbidden", f"user {who.username!r} may not manage {name!r}")
    changed = (
        f.gsy.select_device(found["uuid"], device)
        if selected
        else f.gsy.unselect_device(found["uuid"], device)
    )
    if changed:
        f.gsy.post(
            aggregator_channel(found["uuid"]), protocol.selection_event(selected, found["uuid"], device)
        )
    return jsonify(
        aggregator_uuid=found["uuid"],
        device_uuid=device,
        status="SELECTED" if selected else "UNSELECTED",
        transaction_id=transaction_id(data),
    )


@bp.post(f"{AGG}/select-aggregator/", strict_slashes=False)
def select_aggregator(sim: str) -> ResponseReturnValue:
    return _selection(sim, True)


@bp.post(f"{AGG}/unselect-aggregator/", strict_slashes=False)
def unselect_aggregator(sim: str) -> ResponseReturnValue:
    return _selection(sim, False)


# -- commands (A6, M3, M4) ------------------------------------------------------------------
def run_commands(who: User, batch: dict, tid: str, source: str) -> dict:
    """Our API's ``run_batch``, plus the console's audit rows for the fees it took or refused."""
    f = face()
    response, _replayed = f.service.run_batch(who, batch, tid, source=source)
    running = f.service.clock.label(f.service.store.clock_state().running_slot)
    audited = []
    for area, commands in batch.items():
        answers = response["responses"].get(area, [])
        for command, answer in zip(commands, answers, strict=False):
            if not isinstance(command, dict) or command.get("type") != "grid_fees" or answer is None:
                continue
            fee = (
                (command.get("data") or {}).get("fee_const")
                if isinstance(command.get("data"), dict)
                else None
            )
            name = f.market_name(area)
            if (
                name is None
                or isinstance(fee, bool)
                or not isinstance(fee, int | float)
                or not math.isfinite(fee)
            ):
                continue
            ok = answer.get("status") == "ready"
            audited.append(
                {
                    "market_uuid": area,
                    "market_name": name,
                    "fee_ct_per_kwh": float(fee),
                    "running_slot": running,
                    "status": "applied" if ok else "refused",
                    "applies_from_slot": answer.get("applies_from_slot") if ok else None,
                    "reason": None if ok else answer.get("error_message"),
                }
            )
    if not _replayed:
        f.ops.record_sent(audited, source, who.username, tid)
    return response


@bp.post(f"{AGG}/batch-commands/", strict_slashes=False)
def batch_commands(sim: str) -> ResponseReturnValue:
    who, data, found = aggregator_request(sim)
    batch = data.get("batch_commands")
    if not isinstance(batch, dict) or not all(
        isinstance(k, str) and isinstance(v, list) for k, v in batch.items()
    ):
        raise GsyError(
            400, "invalid_request", "'batch_commands' must be an object {area_uuid: [command, ...]}"
        )
    tid = transaction_id(data)
    response = run_commands(who, batch, tid, f"gsy-sdk:{found['name']}")
    face().gsy.post(aggregator_channel(found["uuid"]), protocol.batch_reply(found["uuid"], batch, response))
    return jsonify(transaction_id=tid, aggregator_uuid=found["uuid"], status="accepted")


def _direct(sim: str, area: str, command: dict, data: dict) -> ResponseReturnValue:
    """A market client's own command (M3/M4): answered on the market's websocket."""
    who = user()
    check_simulation(sim)
    if face().market_name(area) is None:
        raise GsyError(404, "unknown_market", f"no market with uuid {area!r}")
    tid = transaction_id(data)
    response = run_commands(who, {area: [command]}, tid, "gsy-sdk:market-client")
    reply = protocol.command_reply(command, response["responses"][area][0]) or {}
    face().gsy.post(area_channel(area), {**reply, "transaction_id": tid})
    return jsonify(transaction_id=tid, status="accepted")


@bp.post(f"{MARKET}/grid-fee/", strict_slashes=False)
def grid_fee(sim: str, area: str) -> ResponseReturnValue:
    data = body()
    fee = {k: v for k, v in data.items() if k in ("fee_const", "fee_percent")}
    return _direct(sim, area, {"type": "grid_fees", "data": fee}, data)


@bp.route(f"{MARKET}/dso-market-stats/", methods=["GET", "POST"], strict_slashes=False)
def dso_market_stats(sim: str, area: str) -> ResponseReturnValue:
    data = body()
    return _direct(sim, area, {"type": "dso_market_stats", "data": {}}, data)


# -- registry and GraphQL (A5, G1) ------------------------------------------------------------
@bp.route(
    "/external-connection/configurations/<sim>/registry/", methods=["GET", "POST"], strict_slashes=False
)
def registry(sim: str) -> ResponseReturnValue:
    who = user()
    check_simulation(sim)
    body()
    f = face()
    return jsonify(protocol.registry(f.tree, f.may_manage(who), f.gsy.selected_by(who.username)))


@bp.post("/graphql/", strict_slashes=False)
def graphql() -> ResponseReturnValue:
    user()
    data = body()
    try:
        sim = protocol.read_configuration_uuid(data.get("query"))
    except protocol.GraphQLRefused as exc:
        return jsonify(data=None, errors=[{"message": str(exc)}]), 400
    f = face()
    if sim != f.simulation_id:
        message = f"no configuration {sim!r}; this exchange's simulation id is {f.simulation_id}"
        return jsonify(data={"readConfiguration": None}, errors=[{"message": message}])
    return jsonify(data={"readConfiguration": {"scenarioData": {"latest": {"serialized": f.serialized}}}})


# -- websockets (§1.5) -------------------------------------------------------------------------
@bp.before_request
def _socket_auth() -> ResponseReturnValue | None:
    """Check a websocket's token and path before the upgrade, so a bad one gets a 4xx."""
    if not request.path.startswith("/external-ws/") or request.endpoint is None:
        return None
    try:
        who = user()
        args = request.view_args or {}
        check_simulation(args.get("sim", ""))
        if "agg" in args and face().gsy.aggregator(who.username, args["agg"]) is None:
            raise GsyError(
                404, "unknown_aggregator", f"user {who.username!r} has no aggregator {args['agg']!r}"
            )
        if "area" in args and face().market_name(args["area"]) is None:
            raise GsyError(404, "unknown_market", f"no market with uuid {args['area']!r}")
    except (GsyError, AuthError) as exc:
        return error(exc.status, exc.code, exc.message)
    if not face().socket_slots.acquire(blocking=False):
        response, status = error(
            503, "too_many_sockets", "this worker holds as many websockets as it may; try again shortly"
        )
        response.headers["Retry-After"] = "5"
        return response, status
    g.gsy_socket_slot = True
    # where this socket starts reading the outbox, taken before the upgrade is answered: a client
    # that sends a batch the instant its socket is up gets the answer (read after the handshake,
    # a frame written in between was skipped)
    g.gsy_outbox_start = face().gsy.last_id()
    # ... and the last closed slot, for the same reason: a slot that closes between the handshake
    # and the socket's first read is a market event the script is owed (it was dropped)
    g.gsy_closed_start = face().service.store.clock_state().last_closed_slot
    return None


@bp.teardown_request
def _socket_slot_free(_exc: Exception) -> tuple[Response, int]:
    if g.pop("gsy_socket_slot", False):
        face().socket_slots.release()


def send(ws: Server, frame: dict | str) -> None:
    """Every frame is binary UTF-8 JSON: the SDK calls ``message.decode('utf-8')``."""
    ws.send((frame if isinstance(frame, str) else json.dumps(frame)).encode("utf-8"))


def going_away(ws: Server) -> None:
    """Close a socket because the process stops: close frame 1001, then the TCP connection.

    Ending the TCP connection ourselves spares the client its close timeout (the HTTP server
    would otherwise keep the connection open for a next request that never comes).
    """
    try:
        ws.close(reason=GOING_AWAY, message="the server is restarting; reconnect")
    except ConnectionClosed:
        pass
    hang_up(ws)


def hang_up(ws: Server) -> None:
    ws.thread.join(timeout=2)  # the client's close frame, answered by simple-websocket's reader
    try:
        ws.sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


@sock.route("/external-ws/<sim>/aggregator/<agg>/", bp=bp, strict_slashes=False)
def aggregator_socket(ws: Server, sim: str, agg: str) -> None:
    """Selections, command replies and one ``market`` event per slot, until the client leaves.

    On connect it repeats ``selected_by_device`` for every market already selected, because the
    SDK may select before its socket is up; the per-slot event goes only to an aggregator that
    has selected at least one market, as gsy-e sends it per controlled market. A socket that
    finds several slots closed since it last looked (a fast-forward run) sends the newest only:
    the SDK acts on the state of the slot now running. While the aggregator is still selecting
    markets the event waits (``SELECTION_SETTLE_S``), so the script's batch names only markets
    the SDK knows it has selected. When the scenario has ended (its ``days``) the socket sends
    ``finish``, on which a script ends.
    """
    f = face()
    try:
        pump_aggregator(ws, f, agg)
    except ConnectionClosed:
        hang_up(ws)
        return
    going_away(ws)


def pump_aggregator(ws: Server, f: GsyFace, agg: str) -> None:
    channel = aggregator_channel(agg)
    last_id = g.gsy_outbox_start if "gsy_outbox_start" in g else f.gsy.last_id()
    store = f.service.store
    # listening from before the first read: a frame or a slot after it wakes the socket's wait
    with f.gsy.events.subscribe(channel, store.cycles_channel, event=ws.event, poll_s=SOCKET_POLL_S) as sub:
        told: set[str] = set()
        for device in f.gsy.devices(agg):
            send(ws, protocol.selection_event(True, agg, device))
            told.add(device)
        last_closed = g.gsy_closed_start if "gsy_closed_start" in g else store.clock_state().last_closed_slot
        selected_at = time.monotonic()
        finish_sent = False
        while not f.stop.is_set():
            for frame_id, payload in f.gsy.frames_after(channel, last_id):
                last_id = frame_id
                frame = json.loads(payload)
                event, device = frame.get("event"), frame.get("device_uuid")
                if event == "selected_by_device":
                    if device in told:
                        continue
                    told.add(device)
                    selected_at = time.monotonic()
                elif event == "unselected_by_device":
                    told.discard(device)
                send(ws, payload)
            state = store.clock_state()  # one read a turn serves both checks below
            closed = state.last_closed_slot
            unsettled = SELECTION_SETTLE_S - (time.monotonic() - selected_at)
            if closed is not None and closed != last_closed and unsettled <= 0:
                last_closed = closed
                if told:
                    info = f.service.market_info(closed)
                    send(ws, protocol.market_event(info, f.assets, f.simulation_id))
            ended = f.service.scenario.has_ended(state.running_slot)
            if not finish_sent and unsettled <= 0 and ended:
                send(ws, protocol.finish_event(f.simulation_id))  # the SDK's scripts exit on it
                finish_sent = True
            # an event held back for the selections to settle is due when they have
            held_back = closed != last_closed or (ended and not finish_sent)
            wait_turn(ws, f, sub, unsettled if held_back else math.inf)


def wait_turn(ws: Server, f: GsyFace, sub: Subscription, timeout: float = math.inf) -> None:
    """Wait for a frame or a closed slot (a notification, ``app.store.notify``), the client
    leaving, the process stopping or ``timeout``; at most until the store's next re-read.

    Raises ``ConnectionClosed`` when the client left (the client never sends: what it would
    send is read and dropped).
    """
    end = time.monotonic() + min(timeout, sub.interval)
    while not f.stop.is_set() and (left := end - time.monotonic()) > 0:
        if sub.wait(min(left, STOP_CHECK_S)):
            break
    ws.receive(timeout=0)


@sock.route("/external-ws/<sim>/<area>/", bp=bp, strict_slashes=False)
def market_socket(ws: Server, sim: str, area: str) -> None:
    """A ``RestMarketClient``'s socket: the replies to its direct commands, nothing else (the
    SDK's market client has no handler for events)."""
    f = face()
    channel = area_channel(area)
    last_id = g.gsy_outbox_start if "gsy_outbox_start" in g else f.gsy.last_id()
    try:
        with f.gsy.events.subscribe(channel, event=ws.event, poll_s=SOCKET_POLL_S) as sub:
            while not f.stop.is_set():
                for frame_id, payload in f.gsy.frames_after(channel, last_id):
                    last_id = frame_id
                    send(ws, payload)
                wait_turn(ws, f, sub)
    except ConnectionClosed:
        hang_up(ws)
        return
    going_away(ws)


def install(server: Flask, face_: GsyFace) -> None:
    """Mount the face on ``server``; unknown paths under its prefixes answer JSON 404."""
    server.extensions["gsy_compat"] = face_
    server.register_blueprint(bp)

    @server.before_request
    def _gsy_paths_stay_json() -> ResponseReturnValue | None:
        if not request.path.startswith(PREFIXES) or request.blueprint == "gsy_compat":
            return None
        return error(404, "not_found", f"no endpoint {request.path}")
