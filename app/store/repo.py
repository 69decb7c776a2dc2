"""The exchange's store: markets, slot history, the fee book and the runner's state.

One writer, many readers: only the runner writes slots and state (``close_slot``), in one
transaction per slot, so a slot is in the history for every market or for none, and the state
saved with it is what the next start resumes from. Fees are accepted by any process
(``fee_book``, a ``StoreFeeBook``: the rule of ``app.exchange.fees`` over these tables); accepting
a fee and opening a slot both lock the exchange's state row, so a fee is either seen by the slot
being opened or was received while that slot was already running.
"""

from __future__ import annotations

import hashlib
import io
import json
import time

import numpy as np
from sqlalchemy import Connection, Engine, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from app.config import Settings
from app.exchange.fees import FeeChange
from app.exchange.grid import GridModel, build_grid
from app.exchange.runner import AssetArrays, BuildStats, RunnerState
from app.exchange.scenario import Scenario, load_scenario
from app.exchange.stats import SlotStats
from app.store import packed
from app.store.db import check_migrated, make_engine, migrate, reader
from app.store.fee_book import StoreFeeBook
from app.store.notify import Notifier, cycles_channel
from app.store.schema import (
    STAT_CHUNK_MARKETS,
    batch_transactions,
    exchange_state,
    fee_changes,
    markets,
    slot_stat_chunks,
)


class StoreMismatch(RuntimeError):
    """The store holds a run of a scenario with this name but other content."""


def scenario_hash(scenario: Scenario) -> str:
    """What a stored run was simulated with; ``days`` (the end may move) and the markets' flow
    ``limits`` (they steer the operator, not the simulation) are left out."""
    data = scenario.model_dump(mode="json", exclude={"days"})
    data["grid"].pop("limits", None)
    for community in data["grid"]["communities"]:
        community.pop("limits", None)
    canonical = json.dumps(data, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _pack(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _unpack(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _placeholders(engine: Engine, n: int) -> str:
    style = engine.dialect.paramstyle
    mark = "?" if style == "qmark" else "%s" if style in ("format", "pyformat") else None
    if mark is None:  # numeric and named styles: not among our drivers (sqlite3, psycopg)
        raise NotImplementedError(f"paramstyle {style!r}")
    return ", ".join([mark] * n)


class ExchangeStore:
    """Store of one scenario's exchange. Safe to use from several threads and processes."""

    def __init__(
        self,
        engine: Engine | str,
        scenario: Scenario,
        grid: GridModel,
        redis_url: str | None = None,
        events: Notifier | None = None,
    ):
        self.engine = make_engine(engine) if isinstance(engine, str) else engine
        # a closed slot is announced on ``cycles_channel`` (app.store.notify): LISTEN/NOTIFY on
        # PostgreSQL, Redis pub/sub with ``redis_url``, else the readers poll
        self.events = events or Notifier.for_store(self.engine, redis_url)
        self.cycles_channel = cycles_channel(scenario.name)
        self.reader = reader(self.engine)  # transactions that only read
        self.scenario = scenario
        self.grid = grid
        self.key = scenario.name
        self.uuids = [m.uuid for m in grid.markets]
        self._position = {u: i for i, u in enumerate(self.uuids)}
        self.fee_book = StoreFeeBook(
            self.engine, self.reader, self.key, self.uuids, grid.initial_fee_ct_per_kwh
        )
        c = slot_stat_chunks.c
        columns = (c.scenario, c.slot, c.chunk, c.slot_label, c.n_markets, c.stats)
        self._insert_chunks = (
            f"INSERT INTO {slot_stat_chunks.name} ({', '.join(col.name for col in columns)}) "
            f"VALUES ({_placeholders(self.engine, len(columns))})"
        )

    # -- set-up ---------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        url: str,
        scenario: Scenario,
        grid: GridModel,
        run_migrations: bool = True,
        redis_url: str | None = None,
        events: Notifier | None = None,
    ) -> ExchangeStore:
        """Open the store of ``scenario`` at ``url`` and register it.

        ``run_migrations=False`` (web workers and clock on a PaaS, where ``release:`` migrates)
        checks the schema instead and raises ``NotMigrated`` when it is not the newest.
        ``redis_url``/``events``: how closed slots are announced (``app.store.notify``).
        """
        if run_migrations:
            migrate(url)
        store = cls(url, scenario, grid, redis_url, events)
        try:
            if not run_migrations:
                check_migrated(store.engine)
            try:
                store.register()
            except IntegrityError:  # another process registered it at the same moment
                store.register()
        except BaseException:
            store.engine.dispose()  # the caller never gets the engine: close its connections
            raise
        return store

    @classmethod
    def of_settings(cls, settings: Settings, run_migrations: bool = True) -> ExchangeStore:
        """The store of a deployment: its ``SCENARIO`` at ``DATABASE_URL``, closed slots announced
        on ``REDIS_URL`` when set (:meth:`open`; ``ScenarioError`` when the scenario is not one)."""
        scenario = load_scenario(settings.scenario)
        return cls.open(
            settings.database_url,
            scenario,
            build_grid(scenario),
            run_migrations=run_migrations,
            redis_url=settings.redis_url,  # the closed slots' notifications (app.store.notify)
        )

    def register(self) -> None:
        """Record the scenario's markets; refuse a store that ran other content under its name."""
        digest = scenario_hash(self.scenario)
        with self.engine.begin() as conn:
            row = conn.execute(
                select(exchange_state.c.scenario_hash).where(exchange_state.c.scenario == self.key)
            ).first()
            if row is not None and row.scenario_hash != digest:
                raise StoreMismatch(
                    f"the store already holds a run of scenario {self.key!r} with different "
                    "content; rename the scenario, point DATABASE_URL elsewhere, or reset it "
                    "(python -m app.entry.run --reset)"
                )
            known = {
                r.uuid for r in conn.execute(select(markets.c.uuid).where(markets.c.scenario == self.key))
            }
            rows = [
                dict(
                    uuid=m.uuid,
                    scenario=self.key,
                    position=m.index,
                    name=m.name,
                    level=m.level,
                    parent_uuid=None if m.parent_index is None else self.uuids[m.parent_index],
                )
                for m in self.grid.markets
                if m.uuid not in known
            ]
            if rows:
                conn.execute(insert(markets), rows)
            if row is None:
                now = time.time()
                conn.execute(
                    insert(exchange_state).values(
                        scenario=self.key,
                        scenario_hash=digest,
                        running_slot=0,
                        last_closed_slot=None,
                        slot_started_at=now,
                        slot_seconds=0.0,
                        asset_state=None,
                        updated_at=now,
                    )
                )

    def reset(self) -> None:
        """Forget this scenario's history, fees and state (used by ``--reset``)."""
        with self.engine.begin() as conn:
            conn.execute(delete(slot_stat_chunks).where(slot_stat_chunks.c.scenario == self.key))
            conn.execute(delete(fee_changes).where(fee_changes.c.scenario == self.key))
            conn.execute(delete(batch_transactions).where(batch_transactions.c.scenario == self.key))
            conn.execute(delete(exchange_state).where(exchange_state.c.scenario == self.key))
            conn.execute(delete(markets).where(markets.c.scenario == self.key))
        self.fee_book.forget()

    # -- the runner's state ---------------------------------------------------------------
    def _lock_state(self, conn: Connection) -> Row:
        """Lock the exchange's state row; returns its ``running_slot``."""
        c = exchange_state.c
        return conn.execute(select(c.running_slot).where(c.scenario == self.key).with_for_update()).one()

    def load_state(self) -> RunnerState:
        with self.reader.connect() as conn:
            row = conn.execute(select(exchange_state).where(exchange_state.c.scenario == self.key)).one()
        return RunnerState(
            running_slot=row.running_slot,
            last_closed_slot=row.last_closed_slot,
            slot_started_at=row.slot_started_at,
            slot_seconds=row.slot_seconds,
            asset_state=_unpack(row.asset_state) if row.asset_state else None,
        )

    def clock_state(self) -> RunnerState:
        """The running slot and its timing, without the (large) asset state."""
        c = exchange_state.c
        with self.reader.connect() as conn:
            row = conn.execute(
                select(c.running_slot, c.last_closed_slot, c.slot_started_at, c.slot_seconds).where(
                    c.scenario == self.key
                )
            ).one()
        return RunnerState(
            row.running_slot, row.last_closed_slot, row.slot_started_at, row.slot_seconds, None
        )

    def slot_matrix(self, slot: int) -> tuple[str, np.ndarray] | None:
        """``(slot label, stats)`` of one closed slot, None if it is not closed: ``stats`` is the
        ``(n_markets, 15)`` matrix of every market (rows in market order, columns
        ``STAT_FIELDS``, NaN for no value)."""
        c = slot_stat_chunks.c
        query = (
            select(c.slot_label, c.n_markets, c.stats)
            .where(c.scenario == self.key, c.slot == slot)
            .order_by(c.chunk)
        )
        with self.reader.connect() as conn:
            parts = conn.execute(query).all()
        if not parts:
            return None
        fields = np.concatenate([packed.unpack(p.stats, p.n_markets) for p in parts], axis=1)
        return parts[0].slot_label, fields.T

    def slot_rows(self, slot: int) -> list[dict]:
        """The stats of every market for one closed slot, in market order (empty if not closed)."""
        found = self.slot_matrix(slot)
        if found is None:
            return []
        label, matrix = found
        return [
            {
                "market_uuid": uuid,
                "slot": slot,
                "slot_label": label,
                **packed.stat_values(values),
                "position": i,
            }
            for i, (uuid, values) in enumerate(zip(self.uuids, matrix.tolist(), strict=True))
        ]

    def start_slot(
        self, slot: int, slot_seconds: float, asset_state: AssetArrays | None = None
    ) -> np.ndarray:
        """Mark ``slot`` as running from now and return its fees (resume or first start)."""
        now = time.time()
        with self.engine.begin() as conn:
            self._lock_state(conn)
            values = dict(running_slot=slot, slot_started_at=now, slot_seconds=slot_seconds, updated_at=now)
            if asset_state is not None:
                values["asset_state"] = _pack(asset_state)
            conn.execute(update(exchange_state).where(exchange_state.c.scenario == self.key).values(**values))
            fees = self.fee_book.opened(self.fee_book.storage.ledger(conn), slot)
        self.fee_book.settle(slot, fees)
        return fees

    def close_slot(
        self, slot: int, label: str, build_stats: BuildStats, asset_state: AssetArrays, slot_seconds: float
    ) -> tuple[SlotStats, np.ndarray]:
        """Close ``slot`` and open ``slot + 1`` in one transaction.

        Reads the fees of ``slot + 1`` under the state lock (so a fee accepted before this
        moment is in them, and one accepted after it applies from ``slot + 2``), builds the
        stats with them as "queued", writes the stats of every market and the asset state; once
        committed, announces the slot on ``cycles_channel`` (``app.store.notify``).
        Returns the stats and the fees now in force.
        """
        now = time.time()
        state_blob = _pack(asset_state)
        c = exchange_state.c
        with self.engine.begin() as conn:
            # the update takes the state row's lock and checks the running slot at once
            moved = conn.execute(
                update(exchange_state)
                .where(c.scenario == self.key, c.running_slot == slot)
                .values(
                    running_slot=slot + 1,
                    last_closed_slot=slot,
                    slot_started_at=now,
                    slot_seconds=slot_seconds,
                    asset_state=state_blob,
                    updated_at=now,
                )
            ).rowcount
            if moved != 1:
                running = conn.execute(select(c.running_slot).where(c.scenario == self.key)).scalar()
                raise RuntimeError(f"slot {slot} is not the running slot ({running})")
            next_fees = self.fee_book.opened(self.fee_book.storage.ledger(conn), slot + 1)
            stats = build_stats(next_fees)
            rows = [
                (self.key, slot, chunk, label, n, blob)
                for chunk, n, blob in packed.chunks(packed.field_matrix(stats))
            ]
            conn.exec_driver_sql(self._insert_chunks, rows)
        self.fee_book.settle(slot + 1, next_fees)
        self.events.publish(self.cycles_channel, str(slot))  # committed: wake the readers
        return stats, next_fees

    # -- the fee book (its rule: app.exchange.fees) ----------------------------------------
    def fees_for_slot(self, slot: int) -> np.ndarray:
        """Every market's fee in ``slot`` [ct/kWh], in market order."""
        return self.fee_book.fees_for_slot(slot)

    def fee_history(self, market_uuid: str | None = None) -> list[FeeChange]:
        """Every accepted fee change (of one market), in the order accepted."""
        return self.fee_book.history(market_uuid)

    # -- history --------------------------------------------------------------------------
    def history(
        self, market_uuid: str, from_slot: int | None = None, to_slot: int | None = None
    ) -> list[dict]:
        """Per-slot stats of one market, oldest first (``to_slot`` inclusive)."""
        position = self._position.get(market_uuid)
        if position is None:
            return []
        chunk, offset = divmod(position, STAT_CHUNK_MARKETS)
        c = slot_stat_chunks.c
        query = (
            select(c.slot, c.slot_label, c.n_markets, c.stats)
            .where(c.scenario == self.key, c.chunk == chunk)
            .order_by(c.slot)
        )
        if from_slot is not None:
            query = query.where(c.slot >= from_slot)
        if to_slot is not None:
            query = query.where(c.slot <= to_slot)
        with self.reader.connect() as conn:
            return [
                {
                    "market_uuid": market_uuid,
                    "slot": r.slot,
                    "slot_label": r.slot_label,
                    **packed.stat_values(packed.unpack(r.stats, r.n_markets)[:, offset].tolist()),
                }
                for r in conn.execute(query)
            ]

    def closed_slots(self) -> list[int]:
        """Every closed slot of this scenario, ascending."""
        c = slot_stat_chunks.c
        with self.reader.connect() as conn:
            return list(
                conn.execute(
                    select(c.slot).where(c.scenario == self.key, c.chunk == 0).order_by(c.slot)
                ).scalars()
            )
