"""Grid Singularity's hosted exchange (``GRID_API_URL=gsy+https://HOST``, with
``GSY_SIMULATION_ID``, ``GSY_USERNAME``, ``GSY_PASSWORD``): REST + JWT + websocket, the dialect of
``shared/reference/gsy-grid-operator-api.md`` §1 (the one our SDK face serves).

Connecting (each time the link (re)connects):

1. ``POST /api-token-auth/`` -> a JWT, sent as ``Authorization: JWT <token>``;
2. the configuration's registry (``/external-connection/configurations/<sim>/registry/``): the
   grid tree, ``registered`` on the markets this user may manage and the name of the aggregator
   that selected each;
3. our aggregator: the one whose uuid the store kept (``list-aggregators``), else
   ``create-aggregator``; then its websocket ``<ws>/<sim>/aggregator/<uuid>/``;
4. ``select-aggregator`` for each registered market not held by another aggregator (those are
   named in the link's state as held by another client);
5. listen on the websocket: ``market`` and ``finish`` events, and the answers of our batches
   (``POST batch-commands/`` answers "accepted"; the real answer comes as a frame).

The websocket base is ``wss://HOST/external-ws`` (``ws://`` for ``gsy+http://``) unless
``GSY_WEBSOCKET_URL`` says otherwise.
"""

from __future__ import annotations

import json
import logging
import uuid as uuidlib

import requests
import simple_websocket

from app.client.client import ExchangeUnavailable
from app.client.gsy import BatchRefused, GsyLink

log = logging.getLogger(__name__)

HTTP_TIMEOUT_S = 10.0


def http_base(base_url: str) -> str:
    """``gsy+https://HOST`` -> ``https://HOST``."""
    return base_url.split("+", 1)[1].rstrip("/") if base_url.startswith("gsy+") else base_url.rstrip("/")


def websocket_base(base_url: str, configured: str | None = None) -> str:
    if configured:
        return configured.rstrip("/")
    http = http_base(base_url)
    return (
        "wss://" + http[len("https://") :]
        if http.startswith("https://")
        else "ws://" + http[len("http://") :]
    ) + ("/external-ws")


class GsyHostedLink(GsyLink):
    dialect = "hosted"

    def __init__(
        self,
        *args: object,
        simulation_id: str | None = None,
        websocket_url: str | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.simulation_id = simulation_id
        self.http = http_base(self.base_url)
        self.ws_base = websocket_base(self.base_url, websocket_url)
        self._jwt: str | None = None
        self._ws: simple_websocket.Client | None = None

    # -- REST -------------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json", "Authorization": f"JWT {self._jwt}"}

    def _call(self, method: str, path: str, body: dict | None = None) -> requests.Response:
        payload = {
            **(body or {}),
            "transaction_id": (body or {}).get("transaction_id") or str(uuidlib.uuid4()),
        }
        for attempt in range(2):
            if self._jwt is None:
                self._login()
            try:
                response = self.session.request(
                    method,
                    self.http + path,
                    data=json.dumps(payload),
                    headers=self._headers(),
                    timeout=HTTP_TIMEOUT_S,
                )
            except requests.RequestException as exc:
                raise ExchangeUnavailable(f"{self.http}: {exc}") from exc
            if response.status_code == 401 and attempt == 0:
                self._jwt = None  # expired, or the server has a new key: log in again once
                continue
            return response
        return response

    def _login(self) -> None:
        try:
            response = self.session.post(
                f"{self.http}/api-token-auth/",
                data=json.dumps({"username": self.username, "password": self._password}),
                headers={"Content-Type": "application/json"},
                timeout=HTTP_TIMEOUT_S,
            )
        except requests.RequestException as exc:
            raise ExchangeUnavailable(f"{self.http}: {exc}") from exc
        if response.status_code != 200:
            raise ExchangeUnavailable(
                f"login as {self.username!r} refused: {response.status_code} {_detail(response)}"
            )
        body = response.json()
        self._jwt = body.get("access") or body.get("token")

    def _agg_path(self, name: str) -> str:
        return f"/external-connection/aggregator-api/{self.simulation_id}/{name}/"

    # -- connect ----------------------------------------------------------------------------------
    def _connect(self) -> None:
        if not self.simulation_id:
            raise ExchangeUnavailable(
                "GSY_SIMULATION_ID is not set: which configuration of the hosted exchange?"
            )
        self._jwt = None
        registry = self._call("GET", f"/external-connection/configurations/{self.simulation_id}/registry/")
        if registry.status_code != 200:
            raise ExchangeUnavailable(
                f"registry of {self.simulation_id}: {registry.status_code} {_detail(registry)}"
            )
        markets = _registered_markets(registry.json())
        if not markets:
            raise ExchangeUnavailable(
                f"user {self.username!r} may manage no market of configuration {self.simulation_id}"
            )

        listed = self._call("GET", self._agg_path("list-aggregators"))
        mine = {
            a.get("uuid"): a
            for a in (listed.json() if listed.status_code == 200 else [])
            if isinstance(a, dict)
        }
        if self.aggregator_uuid not in mine:
            if self.aggregator_uuid is not None:
                self._new_exchange_run()
            made = self._call("POST", self._agg_path("create-aggregator"), {"name": self.aggregator_name})
            if made.status_code != 200:
                raise ExchangeUnavailable(f"create-aggregator: {made.status_code} {_detail(made)}")
            self.aggregator_uuid = made.json()["uuid"]
        agg = self.aggregator_uuid
        try:
            self._ws = simple_websocket.Client.connect(
                f"{self.ws_base}/{self.simulation_id}/aggregator/{agg}/",
                headers={"Authorization": f"JWT {self._jwt}"},
            )
        except Exception as exc:  # refused, unreachable, bad handshake
            raise ExchangeUnavailable(f"websocket {self.ws_base}: {exc}") from exc

        held, conflicts = {}, []
        for m in markets:
            holder = m["aggregator_name"]
            if holder and holder != self.aggregator_name:
                conflicts.append({"area_uuid": m["uuid"], "name": m["name"], "held_by": holder})
                continue
            answer = self._call(
                "POST",
                self._agg_path("select-aggregator"),
                {"aggregator_uuid": agg, "device_uuid": m["uuid"]},
            )
            if answer.status_code == 200:
                held[m["uuid"]] = m["name"]
            else:
                conflicts.append({"area_uuid": m["uuid"], "name": m["name"], "held_by": _detail(answer)})
        if not held:
            who = ", ".join(f"{c['name']} ({c['held_by']})" for c in conflicts)
            raise ExchangeUnavailable(f"another client holds the markets of {self.simulation_id}: {who}")
        with self._cond:
            self._gsy_state["held"] = held
            self._gsy_state["conflicts"] = conflicts
            self._gsy_state["exchange_name"] = f"Grid Singularity exchange {self.http} ({self.simulation_id})"
        log.info("hosted exchange: aggregator %s holds %s", agg, ", ".join(sorted(held.values())))

    def _listen(self) -> None:
        while not self._link_stop.is_set():
            try:
                raw = self._ws.receive(timeout=1.0)
            except simple_websocket.ConnectionClosed as exc:
                raise ExchangeUnavailable(f"the exchange closed the websocket ({exc})") from exc
            if raw is not None:
                try:
                    frame = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
                except ValueError:
                    frame = None
                if isinstance(frame, dict):
                    if frame.get("command") == "batch_commands":
                        self._on_batch_answer(frame)
                    elif frame.get("event") in ("market", "finish"):
                        self._on_event(frame)
            self.heartbeat()

    def _publish_batch(self, tid: str, batch: dict) -> None:
        response = self._call(
            "POST",
            self._agg_path("batch-commands"),
            {"aggregator_uuid": self.aggregator_uuid, "batch_commands": batch, "transaction_id": tid},
        )
        if response.status_code >= 500:
            raise ExchangeUnavailable(f"batch-commands: {response.status_code} {_detail(response)}")
        if response.status_code >= 400:
            raise BatchRefused(f"{response.status_code} {_detail(response)}")

    def _disconnect(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                ws.close()
            except Exception:  # best effort
                pass


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("message") or body.get("error") or body)[:200]
    return str(body)[:200]


def _registered_markets(tree: dict) -> list[dict]:
    """The registry's markets (``type`` Area) this user may manage, with their place in the tree."""
    out: list[dict] = []

    def walk(node: dict, parent: str | None, level: int) -> None:
        if node.get("type") == "Area" and node.get("registered"):
            out.append(
                {
                    "uuid": node["uuid"],
                    "name": node.get("name") or node["uuid"],
                    "parent_uuid": parent,
                    "level": level,
                    "aggregator_name": node.get("aggregator_name"),
                }
            )
        for child in node.get("children") or []:
            walk(child, node.get("uuid"), level + 1)

    if isinstance(tree, dict):
        walk(tree, None, 0)
    return out
