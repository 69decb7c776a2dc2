"""A local gsy-e over Redis (``GRID_API_URL=gsy+redis://HOST:PORT``): the protocol of
``shared/reference/gsy-live-loop.md`` §7, spoken with redis-py (no SDK).

Connecting (each time the link (re)connects):

1. ``CREATE`` our aggregator on ``aggregator-commands``; its uuid is the message's
   ``transaction_id``, kept in the store, so a restarted console re-creates the *same* aggregator
   (gsy-e answers ``error``: it exists) and finds its markets still selected by it;
2. ``<cfg>/area-map``: gsy-e's uuid -> name of every area;
3. ``<slug>/register_participant`` for each: the markets open for an external connection answer
   with their uuid (one registered before, by us or another client, answers nothing);
4. ``SELECT`` each area by our aggregator: ``SELECTED`` for an open market: ours; ``error``
   "Device already have selected X": ours (X is us: a restart) or another client's, which the
   console then names; ``SELECTED`` for an area that did not answer the register: not open for
   us, let go at once (``UNSELECT``);
5. listen: ``market``/``finish`` events, batch answers, gsy-e's heartbeat (every 5 s).

Redis pub/sub keeps nothing: what gsy-e publishes while the link is down is lost (no invented slot
replaces it), so start gsy-e ``--paused`` and resume it once the console holds its markets.
"""

from __future__ import annotations

import json
import logging
import time
import uuid as uuidlib

import redis

from app.client.client import ExchangeUnavailable
from app.client.gsy import GsyLink, hhmm, slugify

log = logging.getLogger(__name__)

ANSWER_S = 5.0  # a handshake answer (gsy-e answers from its subscriber thread at once)
REGISTER_S = 1.5  # how long the link collects the markets' register answers
HEARTBEAT_SILENCE_S = 16.0  # gsy-e beats every 5 s; three missed: it is gone


def redis_url(base_url: str) -> str:
    return "redis://" + base_url.split("://", 1)[1]


class GsyRedisLink(GsyLink):
    dialect = "redis"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._redis: redis.Redis | None = None
        self._pubsub = None
        self._inbox: dict[tuple[str, str], dict] = {}
        self._last_beat: float | None = None

    # -- channels (gsy_framework.redis_channels) --------------------------------------------------
    @property
    def _events(self) -> str:
        return f"external-aggregator/{self.configuration_id}/{self.aggregator_uuid}/events/all"

    @property
    def _batch(self) -> str:
        return f"external-aggregator/{self.configuration_id}/batch_commands"

    @property
    def _batch_response(self) -> str:
        return f"external-aggregator/{self.configuration_id}/{self.aggregator_uuid}/response/batch_commands"

    # -- plumbing ---------------------------------------------------------------------------------
    def _publish(self, channel: str, payload: dict) -> int:
        try:
            return self._redis.publish(channel, json.dumps(payload))
        except redis.RedisError as exc:
            raise ExchangeUnavailable(f"Redis at {redis_url(self.base_url)}: {exc}") from exc

    def _read(self, timeout: float) -> None:
        """Read one message (or none within ``timeout``) and file it."""
        message = self._pubsub.get_message(timeout=timeout)
        if message is None or message.get("type") not in ("message", "pmessage"):
            return
        channel = message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
        try:
            data = json.loads(message["data"])
        except (TypeError, ValueError):
            return
        if not isinstance(data, dict):
            return
        if channel.startswith("gsy-e-heartbeat"):
            self._last_beat = time.time()
        elif self.aggregator_uuid and channel == self._events:
            self._on_event(data)
        elif self.aggregator_uuid and channel == self._batch_response:
            self._on_batch_answer(data)
        else:
            self._inbox[(channel, str(data.get("transaction_id", "")))] = data

    def _await(self, keys: list[tuple[str, str]], seconds: float) -> dict[tuple[str, str], dict]:
        """The answers among ``keys`` that arrive within ``seconds`` (all of them, or fewer)."""
        until = time.monotonic() + seconds
        wanted = set(keys)
        while time.monotonic() < until and not wanted <= self._inbox.keys():
            self._read(min(0.1, max(until - time.monotonic(), 0.01)))
        return {k: self._inbox.pop(k) for k in keys if k in self._inbox}

    # -- connect ----------------------------------------------------------------------------------
    def _connect(self) -> None:
        url = redis_url(self.base_url)
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=3, socket_keepalive=True)
        try:
            self._redis.ping()
            self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            cfg = self.configuration_id
            self._pubsub.subscribe("aggregator-response", f"{cfg}/response/area-map")
            self._pubsub.psubscribe("*/response/register_participant", "gsy-e-heartbeat*")
            self._inbox.clear()
            self._handshake(cfg)
        except redis.RedisError as exc:
            raise ExchangeUnavailable(f"Redis at {url}: {exc}") from exc

    def _handshake(self, cfg: str) -> None:
        agg = self.aggregator_uuid or str(uuidlib.uuid4())
        self._publish(
            "aggregator-commands", {"name": self.aggregator_name, "type": "CREATE", "transaction_id": agg}
        )
        got = self._await([("aggregator-response", agg)], ANSWER_S)
        if not got:
            raise ExchangeUnavailable(
                "gsy-e does not answer on Redis: is it running, with --enable-external-connection?"
            )
        answer = got[("aggregator-response", agg)]
        if answer.get("status") not in ("ready", "error"):
            raise ExchangeUnavailable(f"gsy-e refused our aggregator: {answer}")
        reused = answer.get("status") == "error"  # it exists: ours, from before a restart
        if not reused and self.aggregator_uuid is not None:
            self._new_exchange_run()
        self.aggregator_uuid = agg
        self._pubsub.subscribe(self._events, self._batch_response)

        self._publish(f"{cfg}/area-map", {"transaction_id": str(uuidlib.uuid4())})
        until = time.monotonic() + ANSWER_S
        mapping = None
        while mapping is None and time.monotonic() < until:
            self._read(0.1)
            for key in [k for k in self._inbox if k[0] == f"{cfg}/response/area-map"]:
                mapping = self._inbox.pop(key).get("area_mapping")
        if not isinstance(mapping, dict):
            raise ExchangeUnavailable("gsy-e did not answer its area map")

        keys, names = [], {}
        for area_uuid, name in mapping.items():
            slug = slugify(str(name))
            tid = str(uuidlib.uuid4())
            self._publish(f"{slug}/register_participant", {"name": slug, "transaction_id": tid})
            keys.append((f"{slug}/response/register_participant", tid))
            names[area_uuid] = str(name)
        answers = self._await(keys, REGISTER_S)
        open_ = {
            a["device_uuid"]
            for a in answers.values()
            if a.get("status") == "ready" and a.get("device_uuid") in names
        }
        # A market registered before (by us before a restart, or by another client) answers no
        # register: SELECT tells whose it is ("Device already have selected X"); an area that
        # turns out free but did not answer is not open for us, and is let go again (UNSELECT).
        # Areas that did not answer are probed only when no market answered at all (a restart,
        # or every market taken), so that a console with markets to take leaves the others be.
        with self._cond:
            known = set(self._gsy_state.get("held") or {}) | set(self.link_store.load()[1].get("held") or {})
        probe = set(names) if not open_ else (known & set(names)) | open_
        keys, asked = [], {}
        for device in sorted(probe):
            tid = str(uuidlib.uuid4())
            self._publish(
                "aggregator-commands",
                {"aggregator_uuid": agg, "device_uuid": device, "type": "SELECT", "transaction_id": tid},
            )
            keys.append(("aggregator-response", tid))
            asked[tid] = device
        answers = self._await(keys, ANSWER_S)
        held, conflicts = {}, []
        for (_, tid), a in answers.items():
            device = asked[tid]
            holder = None
            if a.get("status") == "error":
                holder = str(a.get("msg") or "").rsplit(" ", 1)[-1] or "another client"
            if holder == agg or (a.get("status") == "SELECTED" and device in open_):
                held[device] = names[device]
            elif a.get("status") == "SELECTED":
                self._publish(
                    "aggregator-commands",
                    {
                        "aggregator_uuid": agg,
                        "device_uuid": device,
                        "type": "UNSELECT",
                        "transaction_id": str(uuidlib.uuid4()),
                    },
                )
            elif holder is not None:
                conflicts.append({"area_uuid": device, "name": names[device], "held_by": holder})
        self._await([], 0.3)  # the UNSELECT answers (gsy-e sends each twice): read and drop
        self._inbox.clear()
        if not held:
            if conflicts:
                who = ", ".join(f"{c['name']} (aggregator {c['held_by']})" for c in conflicts)
                raise ExchangeUnavailable(f"another client holds the markets of this gsy-e: {who}")
            raise ExchangeUnavailable(
                "no market of this gsy-e is open for an external connection "
                "(set external_connection_available=True on the Grid and community areas)"
            )
        with self._cond:
            self._gsy_state["held"] = held
            self._gsy_state["conflicts"] = conflicts
            self._gsy_state["exchange_name"] = f"gsy-e over Redis {redis_url(self.base_url)}"
        self._last_beat = time.time()
        log.info(
            "gsy-e: aggregator %s (%s) holds %s%s",
            agg,
            "reused" if reused else "created",
            ", ".join(sorted(held.values())),
            f"; held by others: {conflicts}" if conflicts else "",
        )

    def _listen(self) -> None:
        while not self._link_stop.is_set():
            try:
                self._read(0.5)
            except (redis.RedisError, OSError) as exc:
                raise ExchangeUnavailable(f"Redis at {redis_url(self.base_url)}: {exc}") from exc
            with self._cond:
                finished = bool(self._gsy_state.get("finished"))
            if (
                not finished
                and self._last_beat is not None
                and time.time() - self._last_beat > HEARTBEAT_SILENCE_S
            ):
                raise ExchangeUnavailable(f"gsy-e is silent: no heartbeat since {hhmm(self._last_beat)}")
            self.heartbeat()

    def _publish_batch(self, tid: str, batch: dict) -> None:
        listeners = self._publish(
            self._batch,
            {
                "type": "BATCHED",
                "transaction_id": tid,
                "aggregator_uuid": self.aggregator_uuid,
                "batch_commands": batch,
            },
        )
        if listeners == 0:  # nobody subscribed: gsy-e is not there (nothing was taken)
            raise ExchangeUnavailable(f"no gsy-e listens on {self._batch}")

    def _disconnect(self) -> None:
        for closing in (self._pubsub, self._redis):
            try:
                if closing is not None:
                    closing.close()
            except Exception:  # best effort
                pass
        self._pubsub = None
