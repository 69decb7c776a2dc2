"""The operator side's store: slot history as the agent received it, fee settings, fee commands.

Keyed by ``exchange`` ("embedded" or the remote exchange's URL). The console reads it (charts,
tables, audit log, Excel) and writes settings and queued commands; the agent appends history and
sends the queue. Several web workers and one agent share it, so every change that two of them
could race on (queueing vs claiming a command) is one conditional UPDATE.

Slots are labels ``YYYY-MM-DDTHH:mm`` in and out of this class, Integer numbers in its tables
(``app.slots.minutes``): the conversion is here, at the rows' way in and out, and every range,
order and "last N" compares the numbers.
"""

from __future__ import annotations

import json
import time
import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import Engine, and_, func, insert, select, update

from app import slots
from app.exchange.stat_table import HISTORY_STATS
from app.exchange.stat_table import get as wire_value
from app.store.schema import fee_commands, fee_settings, op_history

# The statistics a history row keeps (``app.exchange.stat_table``), by their keys in the code; the
# table's columns keep their names (``SlotStat.column``), the rows read from it have the keys.
HISTORY_FIELDS = tuple(s.key for s in HISTORY_STATS)
_COLUMN_OF = {s.key: s.column for s in HISTORY_STATS if s.key != s.column}
_KEY_OF = {column: key for key, column in _COLUMN_OF.items()}
_ROW_COLUMNS = tuple(c.label(_KEY_OF[c.name]) if c.name in _KEY_OF else c for c in op_history.c)

_COMMAND_SLOTS = ("running_slot", "applies_from_slot")  # fee_commands' slot columns

QUEUED, SENDING, APPLIED, REFUSED, SUPERSEDED = "queued", "sending", "applied", "refused", "superseded"


@dataclass(frozen=True)
class FeeSetting:
    market_uuid: str
    mode: str  # "manual" | "model"
    manual_fee_ct_per_kwh: float | None
    model: dict | None
    changed_by: str
    changed_at: float


def history_row(market: dict, slot: str, stats: dict | None = None) -> dict:
    """A history row of ``market`` (a ``market_info`` entry) for ``slot``.

    ``stats`` is that market's ``dso_market_stats`` answer for the slot (what the agent fetches);
    without it, the entry's own ``last_market_stats`` and its fields beside them are used.
    """
    if stats is None:
        stats = {**market, **market["last_market_stats"]}
    row = {
        "market_uuid": market["area_uuid"],
        "slot": slot,
        "name": market["name"],
        "level": market.get("level", 1),
        "parent_uuid": market.get("parent_uuid"),
    }
    for s in HISTORY_STATS:
        value = wire_value(stats, s.api_name)
        row[s.key] = s.default if value is None else value
    return row


def _history_out(row: dict) -> dict:
    """A history row as read from the table, its slot number as a label."""
    row["slot"] = slots.from_minutes(row["slot"])
    return row


class OperatorStore:
    def __init__(self, engine: Engine, exchange: str = "embedded"):
        self.engine = engine
        self.exchange = exchange

    # -- history --------------------------------------------------------------------------
    def append_history(self, rows: list[dict]) -> int:
        """Add rows not yet there (a cycle delivered twice adds nothing); returns how many."""
        if not rows:
            return 0
        numbers = {label: slots.minutes(label) for label in {r["slot"] for r in rows}}
        h = op_history.c
        with self.engine.begin() as conn:
            have = {
                (m, s)
                for m, s in conn.execute(
                    select(h.market_uuid, h.slot).where(
                        h.exchange == self.exchange, h.slot.in_(numbers.values())
                    )
                )
            }
            new = [
                {
                    **{_COLUMN_OF.get(k, k): v for k, v in r.items()},
                    "slot": numbers[r["slot"]],
                    "exchange": self.exchange,
                }
                for r in rows
                if (r["market_uuid"], numbers[r["slot"]]) not in have
            ]
            if new:
                conn.execute(insert(op_history), new)
        return len(new)

    def history(
        self, market_uuid: str, start: str | None = None, end: str | None = None, last: int | None = None
    ) -> list[dict]:
        """One market's rows, oldest first; ``last`` keeps only the newest ``last`` slots."""
        h = op_history.c
        query = select(*_ROW_COLUMNS).where(h.exchange == self.exchange, h.market_uuid == market_uuid)
        if start is not None:
            query = query.where(h.slot >= slots.minutes(start))
        if end is not None:
            query = query.where(h.slot <= slots.minutes(end))
        if last is not None:
            query = query.order_by(h.slot.desc()).limit(last)
        else:
            query = query.order_by(h.slot)
        with self.engine.connect() as conn:
            rows = [_history_out(dict(r._mapping)) for r in conn.execute(query)]
        return rows[::-1] if last is not None else rows

    def history_chunks(
        self,
        market_uuid: str,
        start: str | None = None,
        end: str | None = None,
        fields: tuple[str, ...] = HISTORY_FIELDS,
        size: int = 2000,
    ) -> Iterator[list[tuple]]:
        """One market's rows in [start, end] as tuples ``(slot, *fields)``, oldest first, ``size`` a list.

        One ordered query streamed from the database (a server-side cursor on PostgreSQL), so a
        long history is neither read twice nor held whole; for exports. Its connection stays open
        until the iterator is exhausted or closed.
        """
        h = op_history.c
        query = select(h.slot, *(h[_COLUMN_OF.get(f, f)] for f in fields)).where(
            h.exchange == self.exchange, h.market_uuid == market_uuid
        )
        if start is not None:
            query = query.where(h.slot >= slots.minutes(start))
        if end is not None:
            query = query.where(h.slot <= slots.minutes(end))
        label = slots.from_minutes
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=size).execute(
                query.order_by(h.slot)
            )
            for part in result.partitions(size):
                yield [(label(r[0]),) + r[1:] for r in part]

    def latest_slot(self) -> str | None:
        h = op_history.c
        with self.engine.connect() as conn:
            return slots.from_column(
                conn.execute(
                    select(h.slot).where(h.exchange == self.exchange).order_by(h.slot.desc()).limit(1)
                ).scalar()
            )

    def history_markets(self) -> list[dict]:
        """The markets the history holds (``uuid``, ``name``, ``level``, ``parent_uuid``), grid first,
        then by level and name: what the console shows when the exchange does not answer."""
        h = op_history.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(h.market_uuid, h.name, h.level, h.parent_uuid)
                .where(h.exchange == self.exchange)
                .distinct()
            ).all()
        return [
            {"uuid": r.market_uuid, "name": r.name, "level": r.level, "parent_uuid": r.parent_uuid}
            for r in sorted(rows, key=lambda r: (r.level, r.name))
        ]

    def slot_rows(self, slot: str | None) -> list[dict]:
        """Every market's row of one slot."""
        if slot is None:
            return []
        h = op_history.c
        query = select(*_ROW_COLUMNS).where(h.exchange == self.exchange, h.slot == slots.minutes(slot))
        with self.engine.connect() as conn:
            return [_history_out(dict(r._mapping)) for r in conn.execute(query)]

    def fee_revenue_by_market(self, after: str | None = None) -> dict[str, float]:
        """Fee revenue [ct] per market summed over the slots after ``after`` (all when None)."""
        h = op_history.c
        query = select(h.market_uuid, func.sum(h.market_fee_revenue)).where(h.exchange == self.exchange)
        if after is not None:
            query = query.where(h.slot > slots.minutes(after))
        with self.engine.connect() as conn:
            return {uuid: revenue or 0.0 for uuid, revenue in conn.execute(query.group_by(h.market_uuid))}

    def slots(self, market_uuid: str) -> list[str]:
        h = op_history.c
        query = (
            select(h.slot).where(h.exchange == self.exchange, h.market_uuid == market_uuid).order_by(h.slot)
        )
        with self.engine.connect() as conn:
            return [slots.from_minutes(n) for n in conn.execute(query).scalars()]

    # -- settings -------------------------------------------------------------------------
    def settings(self) -> dict[str, FeeSetting]:
        s = fee_settings.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(fee_settings).where(s.exchange == self.exchange)).all()
        return {
            r.market_uuid: FeeSetting(
                r.market_uuid,
                r.mode,
                r.manual_fee_ct_per_kwh,
                None if r.model is None else json.loads(r.model),
                r.changed_by,
                r.changed_at,
            )
            for r in rows
        }

    def _upsert_setting(
        self, market_uuid: str, user: str, mode: str, manual_fee_ct_per_kwh: float | None, model: str | None
    ) -> None:
        """Set the market's fee setting (a manual fee or a model), stamped with who and when."""
        values = dict(
            mode=mode,
            manual_fee_ct_per_kwh=manual_fee_ct_per_kwh,
            model=model,
            changed_by=user,
            changed_at=time.time(),
        )
        s = fee_settings.c
        key = and_(s.exchange == self.exchange, s.market_uuid == market_uuid)
        with self.engine.begin() as conn:
            done = conn.execute(update(fee_settings).where(key).values(**values)).rowcount
            if not done:
                conn.execute(
                    insert(fee_settings).values(exchange=self.exchange, market_uuid=market_uuid, **values)
                )

    def set_manual(self, market_uuid: str, fee_ct_per_kwh: float, user: str) -> None:
        self._upsert_setting(market_uuid, user, "manual", fee_ct_per_kwh, None)

    def set_model(self, market_uuid: str, model: dict, user: str) -> None:
        self._upsert_setting(market_uuid, user, "model", None, json.dumps(model))

    # -- commands -------------------------------------------------------------------------
    def queue(
        self,
        market_uuid: str,
        market_name: str,
        fee_ct_per_kwh: float,
        source: str,
        user: str,
        running_slot: str | None = None,
    ) -> int:
        """Queue a fee for the agent's next send point; an unsent command for the market is superseded."""
        c = fee_commands.c
        with self.engine.begin() as conn:
            conn.execute(
                update(fee_commands)
                .where(c.exchange == self.exchange, c.market_uuid == market_uuid, c.status == QUEUED)
                .values(status=SUPERSEDED, reason="replaced by a later change before it was sent")
            )
            return conn.execute(
                insert(fee_commands).values(
                    exchange=self.exchange,
                    market_uuid=market_uuid,
                    market_name=market_name,
                    fee_ct_per_kwh=fee_ct_per_kwh,
                    status=QUEUED,
                    source=source,
                    created_by=user,
                    created_at=time.time(),
                    running_slot=slots.to_column(running_slot),
                )
            ).inserted_primary_key[0]

    def claim_queued(self) -> tuple[str, list[dict]]:
        """Mark every queued command as being sent under one new transaction id; return them.

        The conditional UPDATE makes the claim atomic: when the agent and a "send now" race, each
        command is claimed by exactly one of them.
        """
        tid = f"console-{uuidlib.uuid4()}"
        c = fee_commands.c
        with self.engine.begin() as conn:
            conn.execute(
                update(fee_commands)
                .where(c.exchange == self.exchange, c.status == QUEUED)
                .values(status=SENDING, transaction_id=tid, sent_at=time.time())
            )
            rows = conn.execute(select(fee_commands).where(c.transaction_id == tid).order_by(c.id)).all()
        return tid, [slots.columns_to_labels(dict(r._mapping), _COMMAND_SLOTS) for r in rows]

    def unfinished(self) -> dict[str, list[dict]]:
        """Commands claimed but not answered (the sender died): by transaction id, to resend."""
        c = fee_commands.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(fee_commands).where(c.exchange == self.exchange, c.status == SENDING).order_by(c.id)
            ).all()
        out: dict[str, list[dict]] = {}
        for r in rows:
            out.setdefault(r.transaction_id, []).append(
                slots.columns_to_labels(dict(r._mapping), _COMMAND_SLOTS)
            )
        return out

    def record_results(self, results: dict[int, dict]) -> None:
        """``{command id: {"status": applied|refused, "applies_from_slot"?, "reason"?}}``."""
        c = fee_commands.c
        with self.engine.begin() as conn:
            for command_id, result in results.items():
                conn.execute(
                    update(fee_commands)
                    .where(c.id == command_id, c.status == SENDING)
                    .values(
                        status=result["status"],
                        applies_from_slot=slots.to_column(result.get("applies_from_slot")),
                        reason=result.get("reason"),
                    )
                )

    def record_sent(self, commands: list[dict], source: str, user: str, transaction_id: str) -> None:
        """Audit fee commands another client (a gsy-e-sdk script) sent to the exchange directly.

        ``commands``: ``{"market_uuid", "market_name", "fee_ct_per_kwh", "running_slot", "status"
        (applied | refused), "applies_from_slot"?, "reason"?}``. They show in the audit log with
        their source; the agent never sends them (they are not queued).
        """
        if not commands:
            return
        now = time.time()
        rows = [
            {
                "exchange": self.exchange,
                "market_uuid": c["market_uuid"],
                "market_name": c["market_name"],
                "fee_ct_per_kwh": c["fee_ct_per_kwh"],
                "status": c["status"],
                "source": source,
                "created_by": user,
                "created_at": now,
                "running_slot": slots.to_column(c.get("running_slot")),
                "transaction_id": transaction_id,
                "sent_at": now,
                "applies_from_slot": slots.to_column(c.get("applies_from_slot")),
                "reason": c.get("reason"),
            }
            for c in commands
        ]
        with self.engine.begin() as conn:
            conn.execute(insert(fee_commands), rows)

    def command(self, command_id: int) -> dict | None:
        """One command of this exchange by id (None when there is no such command)."""
        c = fee_commands.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(fee_commands).where(c.exchange == self.exchange, c.id == command_id)
            ).first()
        return None if row is None else slots.columns_to_labels(dict(row._mapping), _COMMAND_SLOTS)

    def command_pages(
        self, start: str | None = None, end: str | None = None, size: int = 2000
    ) -> Iterator[list[dict]]:
        """Every command, oldest first, ``size`` a page; with a range only those whose slot
        (``applies_from_slot``, else the slot running when it was queued) is in [start, end]."""
        c = fee_commands.c
        slot = func.coalesce(c.applies_from_slot, c.running_slot)
        query = select(fee_commands).where(c.exchange == self.exchange)
        if start is not None:
            query = query.where(slot >= slots.minutes(start))
        if end is not None:
            query = query.where(slot <= slots.minutes(end))
        last_id = None
        while True:
            page = query if last_id is None else query.where(c.id > last_id)
            with self.engine.connect() as conn:
                rows = [
                    slots.columns_to_labels(dict(r._mapping), _COMMAND_SLOTS)
                    for r in conn.execute(page.order_by(c.id).limit(size))
                ]
            if rows:
                yield rows
            if len(rows) < size:
                return
            last_id = rows[-1]["id"]

    def commands(self, statuses: tuple[str, ...] | None = None, limit: int = 500) -> list[dict]:
        """Newest first."""
        c = fee_commands.c
        query = select(fee_commands).where(c.exchange == self.exchange)
        if statuses:
            query = query.where(c.status.in_(statuses))
        with self.engine.connect() as conn:
            return [
                slots.columns_to_labels(dict(r._mapping), _COMMAND_SLOTS)
                for r in conn.execute(query.order_by(c.id.desc()).limit(limit))
            ]
