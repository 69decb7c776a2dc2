"""Aggregators, their selected markets and the websocket outbox, in the store.

All of it lives in the database, not in a worker: the SDK may create an aggregator through one
gunicorn worker, open its websocket on a second and post its batches to a third. The outbox is
the durable record of the frames; ``post`` then announces the frame on its channel
(``app.store.notify``), which wakes the sockets reading it.
"""

from __future__ import annotations

import json
import time
import uuid as uuidlib

from sqlalchemy import ColumnElement, Connection, Engine, Row, delete, func, insert, select

from app.store.notify import Notifier
from app.store.schema import gsy_aggregators, gsy_outbox, gsy_selections

OUTBOX_KEEP_S = 600.0  # a frame no socket picked up in 10 minutes is nobody's


class GsyStore:
    def __init__(self, engine: Engine, scenario: str, events: Notifier | None = None):
        self.engine = engine
        self.scenario = scenario
        self.events = events or Notifier.for_store(engine)

    # -- aggregators ------------------------------------------------------------------------
    def aggregators(self, owner: str) -> list[dict]:
        a, s = gsy_aggregators.c, gsy_selections.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(a.uuid, a.name, a.created_at)
                .where(a.scenario == self.scenario, a.owner == owner)
                .order_by(a.created_at, a.uuid)
            ).all()
            devices = conn.execute(
                select(s.aggregator_uuid, s.device_uuid).where(s.aggregator_uuid.in_([r.uuid for r in rows]))
            ).all()
        by_aggregator: dict[str, list[str]] = {}
        for d in devices:
            by_aggregator.setdefault(d.aggregator_uuid, []).append(d.device_uuid)
        return [
            {"uuid": r.uuid, "name": r.name, "devices": sorted(by_aggregator.get(r.uuid, []))} for r in rows
        ]

    def _find(self, conn: Connection, owner: str, which: ColumnElement[bool]) -> Row | None:
        """(uuid, name) of the user's aggregator in this scenario that ``which`` picks (by uuid or
        name); None when there is none: a user sees only their own."""
        a = gsy_aggregators.c
        return conn.execute(
            select(a.uuid, a.name).where(a.scenario == self.scenario, a.owner == owner, which)
        ).first()

    def aggregator(self, owner: str, aggregator_uuid: str) -> dict | None:
        with self.engine.connect() as conn:
            row = self._find(conn, owner, gsy_aggregators.c.uuid == aggregator_uuid)
        return None if row is None else {"uuid": row.uuid, "name": row.name}

    def create(self, owner: str, name: str) -> dict:
        """A new aggregator, or the user's existing one of that name (creating is idempotent)."""
        with self.engine.begin() as conn:
            row = self._find(conn, owner, gsy_aggregators.c.name == name)
            if row is not None:
                return {"uuid": row.uuid, "name": name, "created": False}
            new = str(uuidlib.uuid4())
            conn.execute(
                insert(gsy_aggregators).values(
                    uuid=new, scenario=self.scenario, owner=owner, name=name, created_at=time.time()
                )
            )
        return {"uuid": new, "name": name, "created": True}

    def delete(self, owner: str, aggregator_uuid: str) -> bool:
        with self.engine.begin() as conn:
            if self._find(conn, owner, gsy_aggregators.c.uuid == aggregator_uuid) is None:
                return False
            conn.execute(delete(gsy_selections).where(gsy_selections.c.aggregator_uuid == aggregator_uuid))
            conn.execute(delete(gsy_aggregators).where(gsy_aggregators.c.uuid == aggregator_uuid))
        return True

    # -- selections -------------------------------------------------------------------------
    def select_device(self, aggregator_uuid: str, device_uuid: str) -> bool:
        """Select a market for an aggregator; False when it already was."""
        s = gsy_selections.c
        with self.engine.begin() as conn:
            found = conn.execute(
                select(s.device_uuid).where(
                    s.aggregator_uuid == aggregator_uuid, s.device_uuid == device_uuid
                )
            ).first()
            if found is not None:
                return False
            conn.execute(
                insert(gsy_selections).values(
                    aggregator_uuid=aggregator_uuid, device_uuid=device_uuid, created_at=time.time()
                )
            )
        return True

    def unselect_device(self, aggregator_uuid: str, device_uuid: str) -> bool:
        s = gsy_selections.c
        with self.engine.begin() as conn:
            gone = conn.execute(
                delete(gsy_selections).where(
                    s.aggregator_uuid == aggregator_uuid, s.device_uuid == device_uuid
                )
            )
        return gone.rowcount > 0

    def devices(self, aggregator_uuid: str) -> list[str]:
        s = gsy_selections.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(s.device_uuid).where(s.aggregator_uuid == aggregator_uuid).order_by(s.created_at)
            ).all()
        return [r.device_uuid for r in rows]

    def selected_by(self, owner: str) -> dict[str, str]:
        """``{market uuid: aggregator name}`` for the user's aggregators."""
        a, s = gsy_aggregators.c, gsy_selections.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(s.device_uuid, a.name)
                .join(gsy_aggregators, a.uuid == s.aggregator_uuid)
                .where(a.scenario == self.scenario, a.owner == owner)
            ).all()
        return {r.device_uuid: r.name for r in rows}

    # -- outbox -----------------------------------------------------------------------------
    def post(self, channel: str, frame: dict) -> int:
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(delete(gsy_outbox).where(gsy_outbox.c.created_at < now - OUTBOX_KEEP_S))
            frame_id = conn.execute(
                insert(gsy_outbox).values(channel=channel, payload=json.dumps(frame), created_at=now)
            ).inserted_primary_key[0]
        self.events.publish(channel, str(frame_id))  # committed: wake the sockets of the channel
        return frame_id

    def last_id(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(gsy_outbox.c.id))).scalar() or 0

    def frames_after(self, channel: str, after_id: int) -> list[tuple[int, str]]:
        o = gsy_outbox.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(o.id, o.payload).where(o.channel == channel, o.id > after_id).order_by(o.id)
            ).all()
        return [(r.id, r.payload) for r in rows]


def aggregator_channel(aggregator_uuid: str) -> str:
    return f"aggregator:{aggregator_uuid}"


def area_channel(area_uuid: str) -> str:
    return f"area:{area_uuid}"
