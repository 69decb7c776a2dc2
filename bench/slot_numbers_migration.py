"""Time of migration 0021 (the operator's slot labels become slot numbers) on a full history, both ways.

    .venv/bin/python bench/slot_numbers_migration.py [--markets 100] [--days 30] [--url URL] [--json]

Brings an empty database (a temporary SQLite file, or ``--url``: an empty PostgreSQL database) to
the revision before the numbering, fills op_history with ``markets x days x 96`` label rows (288,000
by default), then times the upgrade to the head and the downgrade back, and checks that every row
and the first and last slot came through. With ``--json`` the last line is one JSON object:
``{"rows": n, "upgrade_seconds": u, "downgrade_seconds": d}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, Table, func, insert, select

from app import slots
from app.store.db import alembic_config, make_engine
from bench.report import print_report

KEYS = ("exchange", "market_uuid", "slot", "name", "level", "parent_uuid")  # the rest: statistics


def numbering_revisions(url: str) -> tuple[str, str]:
    """(the numbering's revision, the one before it)."""
    for rev in ScriptDirectory.from_config(alembic_config(url)).walk_revisions():
        if rev.path.endswith("_slot_numbers.py"):
            return rev.revision, rev.down_revision
    raise SystemExit("no slot_numbers migration")


def span(engine: Engine, label: bool) -> tuple[int, str, str]:
    """Rows of op_history and its first and last slot (as labels)."""
    table = Table("op_history", MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        n, lo, hi = conn.execute(select(func.count(), func.min(table.c.slot), func.max(table.c.slot))).one()
    return (n, lo, hi) if label else (n, slots.from_minutes(lo), slots.from_minutes(hi))


def run(url: str, markets: int, days: int) -> dict:
    revision, before = numbering_revisions(url)
    command.upgrade(alembic_config(url), before)
    engine = make_engine(url)
    try:
        table = Table("op_history", MetaData(), autoload_with=engine)
        stats = [c.name for c in table.c if c.name not in KEYS]
        labels = slots.labels(dt.datetime(2026, 6, 1), days * 96, 15)
        with engine.begin() as conn:
            for m in range(markets):
                uuid = f"00000000-0000-0000-0000-{m:012d}"
                conn.execute(
                    insert(table),
                    [
                        {"exchange": "embedded", "market_uuid": uuid, "slot": label, "name": uuid, "level": 2}
                        | dict.fromkeys(stats, 1.5)
                        for label in labels
                    ],
                )
        filled = span(engine, label=True)
        t0 = time.perf_counter()
        command.upgrade(alembic_config(url), revision)
        upgrade = time.perf_counter() - t0
        numbered = span(engine, label=False)
        t0 = time.perf_counter()
        command.downgrade(alembic_config(url), before)
        downgrade = time.perf_counter() - t0
        back = span(engine, label=True)
    finally:
        engine.dispose()
    if not filled == numbered == back:
        raise SystemExit(f"rows changed: {filled} -> {numbered} -> {back}")
    return {"rows": filled[0], "upgrade_seconds": round(upgrade, 2), "downgrade_seconds": round(downgrade, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--url", help="an empty database (default: a temporary SQLite file)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.url:
        result = run(args.url, args.markets, args.days)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = run(f"sqlite:///{Path(tmp) / 'history.sqlite3'}", args.markets, args.days)
    table = [
        ("op_history rows", f"{result['rows']:,}"),
        ("upgrade: labels to numbers [s]", f"{result['upgrade_seconds']:.2f}"),
        ("downgrade: numbers to labels [s]", f"{result['downgrade_seconds']:.2f}"),
    ]
    return print_report(("figure", "value"), table, result, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
