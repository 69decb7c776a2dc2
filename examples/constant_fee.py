"""Constant grid fees: the grid market 2 ct/kWh, every community 1 ct/kWh, re-sent each cycle.

The Grid Singularity SDK's ``rest_grid_fees.py`` on our client. Run it against the embedded
exchange (``make run`` in another terminal)::

    python examples/constant_fee.py --cycles 8
"""

import logging

from _common import managed_markets, parse_args

from app.client import GridOperatorAgent

FEES_CT_PER_KWH = {0: 2.0, 1: 1.0}  # by market level: grid, community


class ConstantFeeAgent(GridOperatorAgent):
    def on_market_cycle(self, market_info: dict) -> None:
        batch = {}
        for market in managed_markets(market_info):
            stats = market["last_market_stats"]
            logging.info(
                "%s %-18s avg %6s ct/kWh  traded %6.2f kWh  import %6.2f  export %6.2f  fee %.2f -> %.2f",
                market_info["last_market_slot"],
                market["name"],
                "-" if stats["avg_trade_rate"] is None else f"{stats['avg_trade_rate']:.2f}",
                stats["total_traded_energy_kWh"],
                market["area_throughput"]["import"],
                market["area_throughput"]["export"],
                market["current_market_fee"],
                FEES_CT_PER_KWH[market["level"]],
            )
            batch[market["area_uuid"]] = [
                {"type": "grid_fees", "data": {"fee_const": FEES_CT_PER_KWH[market["level"]]}}
            ]
        response = self.batch_command(batch)
        applied = {
            r["applies_from_slot"]
            for rs in response["responses"].values()
            for r in rs
            if r["status"] == "ready"
        }
        logging.info("fees sent; they apply from %s", ", ".join(sorted(applied)) or "(none accepted)")


if __name__ == "__main__":
    args = parse_args(__doc__.splitlines()[0])
    ConstantFeeAgent(args.url, args.user, args.password).run(max_cycles=args.cycles)
