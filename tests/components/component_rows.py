"""History rows for the component tests, shaped like ``OperatorStore.history`` returns them."""

from __future__ import annotations

import datetime as dt

MARKET = "m-community-1"


def history_row(slot: str, **values) -> dict:
    """One slot of market ``MARKET`` with traded prices; ``values`` override any field."""
    row = {
        "market_uuid": MARKET,
        "slot": slot,
        "name": "Community 1",
        "level": 2,
        "parent_uuid": "m-grid",
        "min_trade_rate": 10.0,
        "median_trade_rate": 12.0,
        "avg_trade_rate": 12.5,
        "max_trade_rate": 15.0,
        "total_traded_energy_kWh": 4.0,
        "import_kwh": 3.0,
        "export_kwh": 1.0,
        "self_sufficiency": 40.0,
        "self_consumption": 80.0,
        "fee_ct_per_kwh": 2.0,
        "next_fee_ct_per_kwh": 2.5,
        "market_fee_revenue": 8.0,
        "unmatched_kwh": 0.0,
    }
    row.update(values)
    return row


NO_TRADE = {
    "min_trade_rate": None,
    "median_trade_rate": None,
    "avg_trade_rate": None,
    "max_trade_rate": None,
    "total_traded_energy_kWh": 0.0,
    "market_fee_revenue": 0.0,
    "self_sufficiency": None,
}


def day(
    n: int, start: str = "2026-06-22T00:00", minutes: int = 15, no_trade: tuple[int, ...] = ()
) -> list[dict]:
    """``n`` consecutive slots; slot i has prices 10+i .. 15+i and revenue i ct; ``no_trade`` slots none."""
    t0 = dt.datetime.strptime(start, "%Y-%m-%dT%H:%M")
    rows = []
    for i in range(n):
        label = (t0 + dt.timedelta(minutes=minutes * i)).strftime("%Y-%m-%dT%H:%M")
        values = {
            "min_trade_rate": 10.0 + i,
            "median_trade_rate": 12.0 + i,
            "avg_trade_rate": 12.5 + i,
            "max_trade_rate": 15.0 + i,
            "import_kwh": 3.0 + i,
            "export_kwh": 1.0 + i,
            "fee_ct_per_kwh": 2.0 + (i // 4),
            "next_fee_ct_per_kwh": 2.0 + ((i + 1) // 4),
            "market_fee_revenue": float(i),
        }
        if i in no_trade:
            values |= NO_TRADE
        rows.append(history_row(label, **values))
    return rows
