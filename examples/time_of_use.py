"""Time-of-use grid fees from a 96-row table (one value per quarter hour, per market level).

The Grid Singularity SDK's ``rest_tou_strategy.py`` on our client, with the 2020 challenge's
table (``examples/data/tou.csv``: ``time,community_ct_per_kwh,grid_ct_per_kwh``). A fee sent
while slot N runs applies from N+1, so the agent looks up the row of ``market_slot + 15 min``
(the slot after the one now running).

    python examples/time_of_use.py --cycles 8
"""

import csv
import datetime as dt
import logging
from pathlib import Path

from _common import managed_markets, parse_args

from app.client import GridOperatorAgent

TABLE = Path(__file__).with_name("data") / "tou.csv"


def load_table(path: Path) -> dict[str, dict[int, float]]:
    """``{"HH:MM": {level: fee}}``; refuses a table without 96 numeric, non-negative rows."""
    rows: dict[str, dict[int, float]] = {}
    with path.open(newline="") as fh:
        for n, row in enumerate(csv.DictReader(fh), start=2):
            try:
                fees = {1: float(row["community_ct_per_kwh"]), 0: float(row["grid_ct_per_kwh"])}
            except (KeyError, TypeError, ValueError):
                raise SystemExit(
                    f"{path}:{n}: needs numeric community_ct_per_kwh and grid_ct_per_kwh"
                ) from None
            if min(fees.values()) < 0:
                raise SystemExit(f"{path}:{n}: a fee must not be negative")
            rows[row["time"]] = fees
    if len(rows) != 96:
        raise SystemExit(f"{path}: needs 96 quarter-hour rows, found {len(rows)}")
    return rows


class TimeOfUseAgent(GridOperatorAgent):
    table = load_table(TABLE)

    def on_market_cycle(self, market_info: dict) -> None:
        running = dt.datetime.strptime(market_info["market_slot"], "%Y-%m-%dT%H:%M")
        next_slot = running + dt.timedelta(minutes=market_info["slot_length_min"])
        fees = self.table[next_slot.strftime("%H:%M")]
        batch = {
            m["area_uuid"]: [{"type": "grid_fees", "data": {"fee_const": fees[m["level"]]}}]
            for m in managed_markets(market_info)
        }
        self.batch_command(batch)
        logging.info(
            "slot %s: grid %.2f, communities %.2f ct/kWh", next_slot.strftime("%H:%M"), fees[0], fees[1]
        )


if __name__ == "__main__":
    args = parse_args(__doc__.splitlines()[0])
    TimeOfUseAgent(args.url, args.user, args.password).run(max_cycles=args.cycles)
