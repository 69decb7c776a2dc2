"""Time and memory of the console's Excel export: 100 markets x 30 days of 15-minute history.

    .venv/bin/python bench/console_export.py [--markets 100] [--days 30] [--json]

Fills an operator store (SQLite under a temporary folder) with ``markets x days x 96`` history
rows (288,000 by default), a fee setting per market and a fee command per market per day, then
times ``write_history_workbook`` of everything into a file in that folder. Target: export <= 10 s.

Memory: the process's peak RSS (``ru_maxrss``) before and after that export, and the tracemalloc
peak (Python allocations) of a second, traced export. Tracing every allocation slows the export
down, so that run exports ``--trace-markets`` markets (default 10, 0 for all) with all commands
and settings; the export reads one market at a time in chunks and streams each sheet into the
zip, so its peak does not grow with the number of markets.

With ``--json`` the last line is one JSON object:
``{"export_seconds": s, "export_cpu_seconds": c, "export_peak_mb": m, "rows": n, "xlsx_mb": size}``.
The CPU time (this process's, all threads) is the figure to compare on a shared machine: the wall
time grows with whatever else runs on the cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import resource
import sys
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import print_report  # after the path

INSERT_CHUNK = 10_000
TARGET_SECONDS = 10.0


def fill(store, markets: list[dict], days: int) -> int:
    """History rows for every market and slot, inserted in chunks; returns how many."""
    from sqlalchemy import insert

    from app import slots
    from app.store.schema import op_history

    rnd = random.Random(7)
    labels = slots.labels(dt.datetime(2026, 6, 1), days * 96, 15)
    numbers = [slots.minutes(label) for label in labels]  # the table's slot numbers
    rows: list[dict] = []
    total = 0
    with store.engine.begin() as conn:
        for m in markets:
            for i, number in enumerate(numbers):
                traded = rnd.uniform(0, 40)
                rate = rnd.uniform(10, 30)
                fee = 1.0 + (i % 96) / 48
                rows.append(
                    {
                        "exchange": store.exchange,
                        "market_uuid": m["uuid"],
                        "slot": number,
                        "name": m["name"],
                        "level": m["level"],
                        "parent_uuid": None,
                        "min_trade_rate": rate - 2 if traded > 1 else None,
                        "median_trade_rate": rate if traded > 1 else None,
                        "avg_trade_rate": rate + 0.1 if traded > 1 else None,
                        "max_trade_rate": rate + 2 if traded > 1 else None,
                        "total_traded_energy_kWh": traded,
                        "import_kwh": rnd.uniform(0, 20),
                        "export_kwh": rnd.uniform(0, 20),
                        "self_sufficiency": rnd.uniform(0, 100),
                        "self_consumption": rnd.uniform(0, 100) if i % 96 > 24 else None,
                        "market_fee": fee,
                        "next_market_fee": fee,
                        "market_fee_revenue": fee * traded,
                        "unmatched_kwh": rnd.uniform(0, 1),
                    }
                )
                if len(rows) >= INSERT_CHUNK:
                    conn.execute(insert(op_history), rows)
                    total += len(rows)
                    rows = []
        if rows:
            conn.execute(insert(op_history), rows)
            total += len(rows)
    for n, m in enumerate(markets):
        store.set_manual(m["uuid"], 1.5, "bench")
        for day in range(days):
            store.queue(m["uuid"], m["name"], 1 + day % 5, "manual:bench", "bench", labels[day * 96])
        if n % 2:
            tid, claimed = store.claim_queued()
            store.record_results(
                {c["id"]: {"status": "applied", "applies_from_slot": c["running_slot"]} for c in claimed}
            )
    return total


def export(store, markets: list[dict], path: Path, trace: bool) -> tuple[float, float, int]:
    """Wall and CPU seconds of one ``write_history_workbook`` of everything into ``path``; its
    tracemalloc peak."""
    from app.export.excel import write_history_workbook

    scenario_text = "name: bench\nstart: '2026-06-01T00:00:00'\n" * 50
    if trace:
        tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    with path.open("wb") as out:
        write_history_workbook(out, store, markets, None, None, scenario_text, None)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = 0
    if trace:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return seconds, cpu, peak


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument(
        "--trace-markets",
        type=int,
        default=10,
        help="markets in the tracemalloc run (0: all; tracing slows the export down)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from app.operator.store import OperatorStore
    from app.store.db import make_engine
    from app.store.schema import metadata

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.sqlite3'}")
        metadata.create_all(engine)
        store = OperatorStore(engine)
        markets = [
            {
                "uuid": f"00000000-0000-0000-0000-{i:012d}",
                "name": f"House {i:03d} (community {i // 10})",
                "level": 2,
            }
            for i in range(args.markets)
        ]
        t0 = time.perf_counter()
        rows = fill(store, markets, args.days)
        fill_seconds = time.perf_counter() - t0

        rss_before = max_rss_mb()
        out_path = Path(tmp) / "export.xlsx"
        export_seconds, export_cpu, _ = export(store, markets, out_path, trace=False)
        rss_after = max_rss_mb()
        xlsx_mb = out_path.stat().st_size / 1e6
        with zipfile.ZipFile(out_path) as z:  # the sheets' XML before deflating
            xml_mb = sum(i.file_size for i in z.infolist() if i.filename.startswith("xl/worksheets/")) / 1e6
        traced = markets[: args.trace_markets] if args.trace_markets > 0 else markets
        traced_seconds, _, peak = export(store, traced, Path(tmp) / "traced.xlsx", trace=True)
        engine.dispose()

    result = {
        "export_seconds": round(export_seconds, 2),
        "export_cpu_seconds": round(export_cpu, 2),
        "export_peak_mb": round(peak / 1e6, 1),
        "rows": rows,
        "xlsx_mb": round(xlsx_mb, 1),
    }
    met = "met" if export_seconds <= TARGET_SECONDS else "MISSED"
    table = [
        ("markets x days", f"{args.markets} x {args.days}"),
        ("history rows", f"{rows:,}"),
        ("fill store [s]", f"{fill_seconds:.2f}"),
        (f"export, all markets [s] (target <= {TARGET_SECONDS:g}: {met})", f"{export_seconds:.2f}"),
        ("  CPU time of that export [s]", f"{export_cpu:.2f}"),
        ("  rows per second", f"{rows / export_seconds:,.0f}"),
        ("xlsx size [MB]", f"{xlsx_mb:.1f}"),
        ("sheet XML, uncompressed [MB]", f"{xml_mb:.1f}"),
        (f"export tracemalloc peak [MB] ({len(traced)} markets)", f"{peak / 1e6:.1f}"),
        ("  that export, traced [s]", f"{traced_seconds:.2f}"),
        ("peak RSS before export [MB]", f"{rss_before:.1f}"),
        ("peak RSS after export, ru_maxrss [MB]", f"{rss_after:.1f}"),
        ("peak RSS at the end [MB]", f"{max_rss_mb():.1f}"),
    ]
    return print_report(("figure", "value"), table, result, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
