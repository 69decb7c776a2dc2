"""The migration of the operator's slot columns from labels to numbers keeps every row, both ways."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Integer, MetaData, Table, insert, inspect, select

from app.exchange.stat_table import HISTORY_STATS
from app.operator.alerts import AlertStore
from app.operator.store import HISTORY_FIELDS, OperatorStore
from app.store.db import alembic_config, make_engine, migrate
from app.store.schema import metadata
from tests.store.migration_revisions import revision_of

# across midnight, a leap day, a year's end, 5-minute slots beside 15-minute ones, before 2000
LABELS = [
    "2026-06-22T23:45",
    "2026-06-23T00:00",
    "2028-02-29T12:05",
    "2028-02-29T12:10",
    "2028-12-31T23:55",
    "2029-01-01T00:00",
    "1999-12-31T23:45",
]
MARKETS = ["m-grid", "m-house"]
SLOT_COLUMNS = {
    "op_history": ("slot",),
    "fee_commands": ("running_slot", "applies_from_slot"),
    "alerts": ("started_slot", "firing_slot", "resolved_slot"),
}


def history_rows() -> list[dict]:
    """Rows of op_history as the schema before the numbering held them (slot labels)."""
    rows = []
    for m, market in enumerate(MARKETS):
        for i, label in enumerate(LABELS):
            row = {
                "exchange": "embedded",
                "market_uuid": market,
                "slot": label,
                "name": market,
                "level": m,
                "parent_uuid": None if m == 0 else MARKETS[0],
            }
            for n, s in enumerate(HISTORY_STATS):
                row[s.column] = None if s.nullable and (i + n) % 3 == 0 else 100.0 * m + i + n / 8
            rows.append(row)
    return rows


def command_rows() -> list[dict]:
    base = dict(
        exchange="embedded", market_name="Grid", fee_ct_per_kwh=2.5, source="manual:op", created_by="op"
    )
    return [
        dict(base, id=1, market_uuid="m-grid", status="applied", created_at=1.0, running_slot=LABELS[0],
             applies_from_slot=LABELS[1], transaction_id="t-1", sent_at=2.0, reason=None),
        dict(base, id=2, market_uuid="m-grid", status="refused", created_at=3.0, running_slot=LABELS[2],
             applies_from_slot=None, transaction_id="t-2", sent_at=4.0, reason="fee above the maximum"),
        dict(base, id=3, market_uuid="m-house", status="queued", created_at=5.0, running_slot=None,
             applies_from_slot=None, transaction_id=None, sent_at=None, reason=None),
    ]  # fmt: skip


def alert_rows() -> list[dict]:
    base = dict(
        exchange="embedded",
        rule="over_import_limit",
        market_uuid="m-house",
        market_name="House",
        message="import over its limit",
        value=3.0,
        threshold=2.0,
        evaluations=2,
        acked_by=None,
        acked_at=None,
    )
    return [
        dict(base, id=1, state="resolved", started_at=1.0, started_slot=LABELS[0], firing_at=2.0,
             firing_slot=LABELS[1], resolved_at=3.0, resolved_slot=LABELS[4]),
        dict(base, id=2, state="pending", started_at=4.0, started_slot=LABELS[5], firing_at=None,
             firing_slot=None, resolved_at=None, resolved_slot=None),
        dict(base, id=3, state="alerting", started_at=5.0, started_slot=None, firing_at=6.0,
             firing_slot=LABELS[6], resolved_at=None, resolved_slot=None),
    ]  # fmt: skip


def test_the_operators_rows_keep_their_slots_through_the_numbering_and_back(store_url):
    _, before = revision_of(store_url, "_slot_numbers.py")
    command.upgrade(alembic_config(store_url), before)
    engine = make_engine(store_url)
    old = {"op_history": history_rows(), "fee_commands": command_rows(), "alerts": alert_rows()}
    try:
        tables = {name: Table(name, MetaData(), autoload_with=engine) for name in old}
        with engine.begin() as conn:
            for name, rows in old.items():
                conn.execute(insert(tables[name]), rows)

        migrate(store_url)
        for table, columns in SLOT_COLUMNS.items():
            types = {c["name"]: c["type"] for c in inspect(engine).get_columns(table)}
            assert all(isinstance(types[c], Integer) for c in columns), types

        # read back through the operator's stores: the same labels, ranges and orders by time
        ops = OperatorStore(engine)
        ordered = sorted(LABELS)
        for market in MARKETS:
            got = ops.history(market)
            assert [r["slot"] for r in got] == ordered
            by_slot = {r["slot"]: r for r in history_rows() if r["market_uuid"] == market}
            for row in got:
                want = by_slot[row["slot"]]
                assert [row[k] for k in HISTORY_FIELDS] == [want[s.column] for s in HISTORY_STATS]
            assert [r["slot"] for r in ops.history(market, last=3)] == ordered[-3:]
            assert [r["slot"] for r in ops.history(market, "2026-06-23T00:00", "2028-12-31T23:55")] == [
                "2026-06-23T00:00",
                "2028-02-29T12:05",
                "2028-02-29T12:10",
                "2028-12-31T23:55",
            ]
            assert ops.slots(market) == ordered
            chunks = list(ops.history_chunks(market, "2028-02-29T12:10", None, ("market_fee_revenue",), 2))
            assert [r[0] for chunk in chunks for r in chunk] == ordered[-3:]
        assert ops.latest_slot() == "2029-01-01T00:00"
        assert {r["market_uuid"] for r in ops.slot_rows("2028-02-29T12:05")} == set(MARKETS)
        commands = sorted(ops.commands(), key=lambda c: c["id"])
        assert commands == command_rows()
        in_range = [
            c["id"] for page in ops.command_pages("2026-06-23T00:00", "2028-02-29T12:05") for c in page
        ]
        assert in_range == [1, 2]  # by applies_from_slot, else the running slot
        alerts = AlertStore(engine)
        assert alerts.history() == [alert_rows()[0]]
        assert sorted(alerts.open_alerts(), key=lambda a: a["id"]) == alert_rows()[1:]

        # and back: the labels as they were
        command.downgrade(alembic_config(store_url), before)
        tables = {name: Table(name, MetaData(), autoload_with=engine) for name in old}
        with engine.connect() as conn:
            for name, rows in old.items():
                back = [dict(r._mapping) for r in conn.execute(select(tables[name]))]
                key = lambda r: (r.get("id"), r.get("market_uuid"), r.get("slot"))  # noqa: E731
                assert sorted(back, key=key) == sorted(rows, key=key), name
    finally:
        engine.dispose()


def test_the_migrations_make_the_tables_the_schema_declares_types_included(store_url):
    migrate(store_url)
    engine = make_engine(store_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()
