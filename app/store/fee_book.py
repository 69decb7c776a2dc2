"""The fee book kept in the store: the rule of ``app.exchange.fees.FeeBook`` over SQL tables.

``fee_changes`` keeps every accepted change (its ``id`` is the order of acceptance),
``batch_transactions`` the answers of batches, ``exchange_state.running_slot`` the running slot.
A writing unit is one transaction that locks the exchange's state row first, so a fee is either
seen by the slot being opened or was received while that slot was already running; what the
rule means by them is in ``app.exchange.fees`` alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import orjson
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from app.exchange.fees import BatchAnswered, BatchKey, FeeBook, FeeChange
from app.store.schema import batch_transactions, exchange_state, fee_changes


class SqlFeeLedger:
    """One transaction on a scenario's fee book (``FeeLedger``)."""

    def __init__(self, conn: Connection, key: str, writes: bool):
        self.conn = conn
        self.key = key
        self.writes = writes

    def running_slot(self) -> int:
        c = exchange_state.c
        query = select(c.running_slot).where(c.scenario == self.key)
        if self.writes:  # no slot opens until this transaction ends
            query = query.with_for_update()
        return self.conn.execute(query).scalar_one()

    def open_slot(self, slot: int) -> None:
        self.conn.execute(
            update(exchange_state)
            .where(exchange_state.c.scenario == self.key)
            .values(running_slot=slot, updated_at=time.time())
        )

    def append(self, changes: Sequence[FeeChange]) -> None:
        extra = {"scenario": self.key, "created_at": time.time()}
        # one executemany; ids keep the order (FeeChange's fields are the table's columns)
        self.conn.execute(insert(fee_changes), [{**vars(c), **extra} for c in changes])

    def changes(self, after_slot: int | None, until_slot: int) -> Iterable[tuple[str, float]]:
        c = fee_changes.c
        query = (
            select(c.market_uuid, c.fee_ct_per_kwh)
            .where(c.scenario == self.key, c.applies_from_slot <= until_slot)
            .order_by(c.id)
        )
        if after_slot is not None:
            query = query.where(c.applies_from_slot > after_slot)
        return self.conn.execute(query)

    def history(self, market_uuid: str | None) -> list[FeeChange]:
        c = fee_changes.c
        query = select(fee_changes).where(c.scenario == self.key).order_by(c.id)
        if market_uuid is not None:
            query = query.where(c.market_uuid == market_uuid)
        return [
            FeeChange(
                r.market_uuid,
                r.fee_ct_per_kwh,
                r.received_slot,
                r.applies_from_slot,
                r.source,
                r.transaction_id,
            )
            for r in self.conn.execute(query)
        ]

    def snapshot(self) -> tuple[int, np.ndarray] | None:
        c = exchange_state.c
        row = self.conn.execute(select(c.fees_slot, c.fees).where(c.scenario == self.key)).first()
        if row is None or row.fees is None:
            return None
        return row.fees_slot, np.frombuffer(row.fees, dtype=np.float64).copy()

    def keep_snapshot(self, slot: int, fees: np.ndarray) -> None:
        self.conn.execute(
            update(exchange_state)
            .where(exchange_state.c.scenario == self.key)
            .values(fees_slot=slot, fees=np.asarray(fees, dtype=np.float64).tobytes())
        )

    def _batch(self, batch: BatchKey) -> tuple:
        c = batch_transactions.c
        return c.scenario == self.key, c.username == batch[0], c.transaction_id == batch[1]

    def answer(self, batch: BatchKey) -> dict | None:
        text = self.conn.execute(select(batch_transactions.c.response).where(*self._batch(batch))).scalar()
        return None if text is None else orjson.loads(text)

    def keep_answer(self, batch: BatchKey, answer: dict) -> None:
        row = dict(
            scenario=self.key,
            username=batch[0],
            transaction_id=batch[1],
            response=orjson.dumps(answer).decode(),
            created_at=time.time(),
        )
        try:
            self.conn.execute(insert(batch_transactions).values(**row))
        except IntegrityError as exc:  # the same batch, accepted by another transaction first
            raise BatchAnswered(batch) from exc


class SqlFeeStorage:
    """The fee book of scenario ``key`` in the store (``FeeStorage``)."""

    def __init__(self, engine: Engine, reader: Engine, key: str):
        self.engine = engine
        self.reader = reader  # transactions that only read
        self.key = key

    @contextmanager
    def writing(self) -> Iterator[SqlFeeLedger]:
        with self.engine.begin() as conn:
            yield SqlFeeLedger(conn, self.key, writes=True)

    @contextmanager
    def reading(self) -> Iterator[SqlFeeLedger]:
        with self.reader.connect() as conn:
            yield SqlFeeLedger(conn, self.key, writes=False)

    def ledger(self, conn: Connection) -> SqlFeeLedger:
        """The ledger of a transaction the caller holds (the runner's slot transaction)."""
        return SqlFeeLedger(conn, self.key, writes=True)


class StoreFeeBook(FeeBook):
    """``FeeBook`` over the store's tables, for one scenario's markets."""

    storage: SqlFeeStorage

    def __init__(
        self, engine: Engine, reader: Engine, key: str, markets: Sequence[str], initial_fees: Iterable[float]
    ):
        super().__init__(SqlFeeStorage(engine, reader, key), markets, list(initial_fees))
