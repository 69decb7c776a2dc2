"""The migration to packed slot stats keeps the history of a store made before it, both ways."""

from __future__ import annotations

from alembic import command
from sqlalchemy import MetaData, Table, insert, select

from app.exchange.grid import build_grid
from app.exchange.runner import ExchangeRunner
from app.store.db import alembic_config, make_engine, migrate
from app.store.repo import ExchangeStore
from tests.store.migration_revisions import revision_of

OLD_COLUMN = {"fee_ct_per_kwh": "market_fee", "next_fee_ct_per_kwh": "next_market_fee"}


def test_history_of_a_store_made_before_the_packing_survives_upgrade_and_downgrade(
    open_store, store_url, fresh_store_url, small_scenario
):
    # what the exchange answers for three slots run on the newest schema ...
    reference = open_store(small_scenario)
    ExchangeRunner(reference, 0).run(3)
    expected = {u: reference.history(u) for u in reference.uuids}
    assert any(v is None for rows in expected.values() for r in rows for v in r.values())  # NULLs too

    # ... written as the schema before the packing held it: one row per market and slot
    old_url = fresh_store_url(store_url, "before")
    _, before = revision_of(old_url, "_slot_stat_chunks.py")
    command.upgrade(alembic_config(old_url), before)
    engine = make_engine(old_url)
    try:
        meta = MetaData()
        markets = Table("markets", meta, autoload_with=engine)
        slot_stats = Table("slot_stats", meta, autoload_with=engine)
        grid = build_grid(small_scenario)
        parents = [
            None if m.parent_index is None else grid.markets[m.parent_index].uuid for m in grid.markets
        ]
        # the old table's columns have the names the stats had then: the fee's differ from today's keys
        old_rows = [
            {OLD_COLUMN.get(k, k): v for k, v in row.items()} for rows in expected.values() for row in rows
        ]
        with engine.begin() as conn:
            conn.execute(
                insert(markets),
                [
                    dict(
                        uuid=m.uuid,
                        scenario=small_scenario.name,
                        position=m.index,
                        name=m.name,
                        level=m.level,
                        parent_uuid=parent,
                    )
                    for m, parent in zip(grid.markets, parents, strict=True)
                ],
            )
            conn.execute(insert(slot_stats), old_rows)

        migrate(old_url)
        store = ExchangeStore(engine, small_scenario, grid)
        assert {u: store.history(u) for u in store.uuids} == expected
        assert store.closed_slots() == [0, 1, 2]
        assert store.slot_rows(1) == reference.slot_rows(1)

        command.downgrade(alembic_config(old_url), before)
        slot_stats = Table("slot_stats", MetaData(), autoload_with=engine)
        with engine.connect() as conn:
            back = [dict(r._mapping) for r in conn.execute(select(slot_stats))]
        key = lambda r: (r["market_uuid"], r["slot"])  # noqa: E731
        assert sorted(back, key=key) == sorted(old_rows, key=key)
    finally:
        engine.dispose()
