"""The slot statistics of a market: the one table of their names, units and formats.

Every statistic the exchange computes for a market in a slot (``app.exchange.stats.slot_stats``)
is one ``SlotStat`` row of ``SLOT_STATS``. Derived from it: the ``SlotStats`` arrays and the order
of the stored stat matrix, the API's stats answers and market-cycle event
(``app.exchange.events``) and their pydantic models (``app.api.models``), the operator's history
table and rows (``app.store.schema.op_history``, ``app.operator.store``), the history workbook
(``app.export.excel``), the What-if series, workbook and KPI labels (``app.operator.backtest``,
``app.whatif.runs``) and the market charts' titles (``app.console.components.market_charts``).

No imports beyond the standard library: the event module and the runner's CLI load it at once.
"""

from __future__ import annotations

from dataclasses import dataclass

RATE_UNIT, ENERGY_UNIT, SHARE_UNIT, MONEY_UNIT = "ct/kWh", "kWh", "%", "ct"

MARKET_STATS, DSO_MARKET_STATS = "market_stats", "dso_market_stats"


@dataclass(frozen=True)
class SlotStat:
    """One statistic of a market in a slot: the one place its names, unit and format are spelled.

    ``key``: its name inside the code (``SlotStats`` attribute, the exchange's and the operator
    store's row key). ``api_name``: its name on the wire of Grid Singularity's contract (DESIGN §3,
    never to change); ``"group.name"`` for a value nested in an object (``area_throughput``),
    ``None`` for a statistic the API does not answer. ``answer``: the smallest stats answer that
    holds it (``market_stats``; ``dso_market_stats`` holds every ``market_stats`` field too).
    ``in_cycle``: also a field of each market of the market-cycle event (beside its
    ``last_market_stats``). ``aliases``: further wire names of the same value in
    ``dso_market_stats``. ``column``: its column of the operator's history table ``op_history``
    (None: not kept there). ``nullable``: None when there is nothing to measure (no trade, nothing
    consumed or produced). ``default``: what the history keeps when an exchange leaves it out.
    ``number_format``: Excel's, for both workbooks; ``decimals`` follow from it.
    """

    key: str
    api_name: str | None
    label: str
    unit: str
    number_format: str
    description: str
    answer: str | None = MARKET_STATS
    nullable: bool = False
    column: str | None = None
    in_cycle: bool = False
    aliases: tuple[str, ...] = ()
    default: float | None = None

    @property
    def header(self) -> str:
        """The label with its unit: "Import [kWh]"."""
        return f"{self.label} [{self.unit}]"

    @property
    def decimals(self) -> int:
        return len(self.number_format.partition(".")[2])


# The slot statistics, in the order of the rows of the stored stat matrix (``app.store.packed``):
# append new ones at the end, never reorder.
SLOT_STATS: tuple[SlotStat, ...] = (
    SlotStat("min_trade_rate", "min_trade_rate", "Min trade rate", RATE_UNIT, "0.00",
             "lowest trade rate in the market; null when nothing traded", nullable=True,
             column="min_trade_rate"),
    SlotStat("median_trade_rate", "median_trade_rate", "Median trade rate", RATE_UNIT, "0.00",
             "median trade rate; null when nothing traded", nullable=True, column="median_trade_rate"),
    SlotStat("avg_trade_rate", "avg_trade_rate", "Avg trade rate", RATE_UNIT, "0.00",
             "energy-weighted mean trade rate; null when nothing traded", nullable=True,
             column="avg_trade_rate"),
    SlotStat("max_trade_rate", "max_trade_rate", "Max trade rate", RATE_UNIT, "0.00",
             "highest trade rate; null when nothing traded", nullable=True, column="max_trade_rate"),
    SlotStat("total_traded_energy_kWh", "total_traded_energy_kWh", "Traded energy", ENERGY_UNIT, "0.000",
             "energy traded in the market", column="total_traded_energy_kWh"),
    SlotStat("import_kwh", "area_throughput.import", "Import", ENERGY_UNIT, "0.000",
             "energy entering the market's subtree", answer=DSO_MARKET_STATS, column="import_kwh",
             in_cycle=True, aliases=("peak_import_kwh",)),
    SlotStat("export_kwh", "area_throughput.export", "Export", ENERGY_UNIT, "0.000",
             "energy leaving it", answer=DSO_MARKET_STATS, column="export_kwh", in_cycle=True,
             aliases=("peak_export_kwh",)),
    SlotStat("self_sufficiency", "self_sufficiency", "Self-sufficiency", SHARE_UNIT, "0.0",
             "1 - import / consumption; null when nothing was consumed", answer=DSO_MARKET_STATS,
             nullable=True, column="self_sufficiency", in_cycle=True),
    SlotStat("self_consumption", "self_consumption", "Self-consumption", SHARE_UNIT, "0.0",
             "1 - (export + curtailed) / production; null when nothing was produced",
             answer=DSO_MARKET_STATS, nullable=True, column="self_consumption", in_cycle=True),
    SlotStat("fee_ct_per_kwh", "current_market_fee", "Fee in force", RATE_UNIT, "0.00",
             "the market's fee in force in that slot", column="market_fee"),
    SlotStat("next_fee_ct_per_kwh", "next_market_fee", "Fee queued", RATE_UNIT, "0.00",
             "the fee queued for the slot after it", column="next_market_fee"),
    SlotStat("market_fee_revenue", "market_fee_revenue", "Fee revenue", MONEY_UNIT, "0.00",
             "fee times energy of every trade on a path through the market, this slot",
             column="market_fee_revenue", in_cycle=True),
    SlotStat("unmatched_kwh", "unmatched_kwh", "Unmatched energy", ENERGY_UNIT, "0.000",
             "curtailed supply and unserved demand in the subtree", answer=DSO_MARKET_STATS,
             column="unmatched_kwh", in_cycle=True, default=0.0),
    SlotStat("consumption_kwh", None, "Consumption", ENERGY_UNIT, "0.000",
             "loads and flexible loads of the subtree", answer=None),
    SlotStat("production_kwh", None, "Production", ENERGY_UNIT, "0.000",
             "generation of the subtree", answer=None),
)  # fmt: skip
STAT = {s.key: s for s in SLOT_STATS}
STAT_FIELDS = tuple(s.key for s in SLOT_STATS)
HISTORY_STATS = tuple(s for s in SLOT_STATS if s.column is not None)  # what the operator keeps


def get(answer: dict, api_name: str) -> object:
    """The value of ``api_name`` in the wire dict ``answer``, None when it is not there."""
    group, _, name = api_name.rpartition(".")
    return (answer.get(group) or {} if group else answer).get(name)
