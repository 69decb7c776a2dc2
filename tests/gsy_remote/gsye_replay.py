"""A stand-in for gsy-e on a real Redis server that answers with messages recorded from gsy-e.

``fixtures/gsy_e_wire.json`` holds every message of one run against the real gsy-e (see
``fixtures/README.md``). ``ReplayGsyE`` listens where gsy-e listens and answers as the recording
shows gsy-e answering: the area map, the register answers of the two open markets (once each, as
gsy-e does), CREATE / SELECT / UNSELECT in gsy-e's shapes (one aggregator per market: "Device
already have selected X"), each batch with the recorded answers (the recorded ``dso_market_stats``
of the slot the recorded event opened, the recorded ``grid_fees`` echo of the fee sent, nothing for
a market the aggregator does not hold), the recorded ``market`` events when the test calls
``step()``, and a heartbeat while ``beating`` is set. Only what the recording holds can be
answered: a fee it has no answer for is an error of the test.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from pathlib import Path

import redis

WIRE = Path(__file__).resolve().parent / "fixtures" / "gsy_e_wire.json"


class Recording:
    def __init__(self, path: Path = WIRE):
        messages = json.loads(path.read_text())
        self.area_map = next(m["data"] for m in messages if m["channel"] == "/response/area-map")
        self.registers = {}  # slug -> recorded answer
        for m in messages:
            if m["channel"].endswith("/response/register_participant"):
                self.registers.setdefault(m["channel"].split("/", 1)[0], m["data"])
        self.selected = next(
            m["data"]
            for m in messages
            if m["channel"] == "aggregator-response" and m["data"].get("status") == "SELECTED"
        )
        self.refused = next(
            m["data"]
            for m in messages
            if m["channel"] == "aggregator-response" and "already have selected" in str(m["data"].get("msg"))
        )
        self.events: list[dict] = []
        self.stats: dict[int, dict[str, dict]] = {}  # event index -> area -> recorded dso answer
        self.fees: dict[tuple[str, float], dict] = {}  # (area, fee sent) -> recorded grid_fees answer
        sent: dict[str, dict] = {}
        for m in messages:
            channel, data = m["channel"], m["data"]
            if channel.endswith("/events/all"):
                self.events.append(data)
            elif channel.endswith("/batch_commands") and "response" not in channel:
                sent[data["transaction_id"]] = data["batch_commands"]
            elif channel.endswith("/response/batch_commands"):
                batch = sent.get(data["transaction_id"], {})
                for area, answers in data["responses"].items():
                    for command, answer in zip(batch.get(area, []), answers, strict=False):
                        if command["type"] == "dso_market_stats":
                            self.stats.setdefault(len(self.events) - 1, {})[area] = answer
                        elif command["type"] == "grid_fees":
                            self.fees[(area, float(command["data"]["fee_const"]))] = answer
        self.market_events = [e for e in self.events if e.get("event") == "market"]
        self.finish = next(e for e in self.events if e.get("event") == "finish")


class ReplayGsyE:
    def __init__(self, redis_url: str, recording: Recording | None = None):
        self.rec = recording or Recording()
        self.client = redis.Redis.from_url(redis_url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe("aggregator-commands", "/area-map", "external-aggregator//batch_commands")
        self.pubsub.psubscribe("*/register_participant")
        self.aggregators: set[str] = set()
        self.holder: dict[str, str] = {}  # device -> aggregator
        self.registered: set[str] = set()
        self.index = -1  # the recorded market event last published
        self.batches: list[dict] = []  # what the console sent, as gsy-e received it
        self.beating = threading.Event()
        self.beating.set()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=f, daemon=True) for f in (self._serve, self._beat)]
        for t in self._threads:
            t.start()

    def publish(self, channel: str, data: dict) -> None:
        self.client.publish(channel, json.dumps(data))

    def step(self) -> dict:
        """Publish the next recorded market event to every aggregator holding a market."""
        self.index += 1
        event = self.rec.market_events[self.index]
        for agg in set(self.holder.values()):
            self.publish(f"external-aggregator//{agg}/events/all", event)
        return event

    def repeat(self) -> None:
        """Publish the last event again (gsy-e never does; a link must not count it twice)."""
        for agg in set(self.holder.values()):
            self.publish(f"external-aggregator//{agg}/events/all", self.rec.market_events[self.index])

    def finish(self) -> None:
        for agg in set(self.holder.values()):
            self.publish(f"external-aggregator//{agg}/events/all", self.rec.finish)

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)
        self.pubsub.close()
        self.client.close()

    # -- gsy-e's side ---------------------------------------------------------------------------
    def _beat(self) -> None:
        while not self._stop.wait(0.2):
            if self.beating.is_set():
                self.publish("gsy-e-heartbeat/", {"time": time.time()})

    def _serve(self) -> None:
        while not self._stop.is_set():
            message = self.pubsub.get_message(timeout=0.1)
            if not message or message["type"] not in ("message", "pmessage"):
                continue
            channel = message["channel"].decode()
            data = json.loads(message["data"])
            if channel == "/area-map":
                self.publish("/response/area-map", self.rec.area_map)
            elif channel.endswith("/register_participant"):
                slug = channel.split("/", 1)[0]
                if slug in self.rec.registers and slug not in self.registered:  # gsy-e answers once
                    self.registered.add(slug)
                    answer = {**self.rec.registers[slug], "transaction_id": data["transaction_id"]}
                    self.publish(f"{slug}/response/register_participant", answer)
            elif channel == "aggregator-commands":
                self._aggregator(data)
            elif channel == "external-aggregator//batch_commands":
                self._batch(data)

    def _aggregator(self, data: dict) -> None:
        tid, kind = data["transaction_id"], data["type"]
        if kind == "CREATE":
            if tid in self.aggregators:
                answer = {"status": "error", "aggregator_uuid": tid, "transaction_id": tid}
            else:
                self.aggregators.add(tid)
                answer = {"status": "ready", "name": data["name"], "transaction_id": tid}
        elif kind == "SELECT":
            device, agg = data["device_uuid"], data["aggregator_uuid"]
            if device in self.holder:
                answer = copy.deepcopy(self.rec.refused)
                answer["msg"] = f"Device already have selected {self.holder[device]}"
            else:
                self.holder[device] = agg
                answer = copy.deepcopy(self.rec.selected)
            answer.update(aggregator_uuid=agg, device_uuid=device, transaction_id=tid)
        elif kind == "UNSELECT":
            if self.holder.get(data["device_uuid"]) == data["aggregator_uuid"]:
                del self.holder[data["device_uuid"]]
            answer = {"status": "UNSELECTED", **{k: data[k] for k in ("aggregator_uuid", "device_uuid")}}
            answer["transaction_id"] = tid
        else:
            return
        self.publish("aggregator-response", answer)

    def _batch(self, data: dict) -> None:
        self.batches.append(data)
        agg = data["aggregator_uuid"]
        responses: dict[str, list] = {}
        for area, commands in data["batch_commands"].items():
            if self.holder.get(area) != agg:
                continue  # gsy-e drops a command for a market the aggregator does not control
            out = []
            for command in commands:
                if command["type"] == "dso_market_stats":
                    out.append(self.rec.stats[self.index][area])
                else:
                    out.append(self.rec.fees[(area, float(command["data"]["fee_const"]))])
            responses[area] = out
        if responses:
            self.publish(
                f"external-aggregator//{agg}/response/batch_commands",
                {
                    "command": "batch_commands",
                    "transaction_id": data["transaction_id"],
                    "aggregator_uuid": agg,
                    "responses": responses,
                },
            )
