"""The operator's history table is described by the table of slot statistics; the migrations make it."""

from __future__ import annotations

from sqlalchemy import inspect

from app.exchange.stat_table import HISTORY_STATS
from app.operator.store import HISTORY_FIELDS, OperatorStore, history_row
from app.store.db import make_engine, migrate
from app.store.schema import op_history

RATES = ("min_trade_rate", "median_trade_rate", "avg_trade_rate", "max_trade_rate")  # wire = code


def test_the_migrations_make_the_history_table_the_stat_table_describes(store_url):
    migrate(store_url)
    engine = make_engine(store_url)
    try:
        made = {c["name"]: c["nullable"] for c in inspect(engine).get_columns("op_history")}
    finally:
        engine.dispose()
    assert set(made) == {c.name for c in op_history.c}
    assert {s.column: s.nullable for s in HISTORY_STATS} == {s.column: made[s.column] for s in HISTORY_STATS}


def test_a_dso_answer_is_read_back_from_the_history_under_the_codes_names(store_url):
    migrate(store_url)
    engine = make_engine(store_url)
    try:
        store = OperatorStore(engine)
        market = {"area_uuid": "m-1", "name": "Community 1", "level": 1, "parent_uuid": "m-grid"}
        answer = {  # dso_market_stats as the wire has it, of a slot without trades
            **dict.fromkeys(RATES),
            "total_traded_energy_kWh": 0.0,
            "market_fee_revenue": 0.0,
            "current_market_fee": 3.5,
            "next_market_fee": 4.0,
            "area_throughput": {"import": 1.25, "export": 0.5},
            "self_sufficiency": 20.0,
            "self_consumption": None,
            "peak_import_kwh": 1.25,
            "peak_export_kwh": 0.5,
        }  # no unmatched_kwh: an exchange that leaves it out
        assert store.append_history([history_row(market, "2026-06-22T13:15", answer)]) == 1
        (row,) = store.history("m-1")
        assert {k: row[k] for k in HISTORY_FIELDS} == {
            **dict.fromkeys(RATES),
            "total_traded_energy_kWh": 0.0,
            "import_kwh": 1.25,
            "export_kwh": 0.5,
            "self_sufficiency": 20.0,
            "self_consumption": None,
            "fee_ct_per_kwh": 3.5,
            "next_fee_ct_per_kwh": 4.0,
            "market_fee_revenue": 0.0,
            "unmatched_kwh": 0.0,
        }
        assert store.slot_rows("2026-06-22T13:15") == [row]
        (chunk,) = store.history_chunks("m-1", fields=("fee_ct_per_kwh", "next_fee_ct_per_kwh"))
        assert chunk == [("2026-06-22T13:15", 3.5, 4.0)]
    finally:
        engine.dispose()
