"""Request and response models of the Grid Operator API (v1).

These models validate what comes in, shape what goes out, and are the source of
``/api/v1/openapi.json``: the document cannot drift from the code. Units: rates and fees
[ct/kWh], energy [kWh], revenue [ct], self-sufficiency [%]. Slots are ``YYYY-MM-DDTHH:mm``.
"""

from __future__ import annotations

import keyword
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from app.exchange.stat_table import DSO_MARKET_STATS, MARKET_STATS, SLOT_STATS, SlotStat

SlotLabel = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$", examples=["2026-06-22T13:15"])]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorResponse(BaseModel):
    error: str = Field(description="machine-readable code, e.g. invalid_json, negative_fee")
    message: str = Field(description="a sentence for humans")


# --- auth -------------------------------------------------------------------------------------
class TokenRequest(_Strict):
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="seconds")
    username: str
    role: Literal["grid_operator", "viewer"]


# --- clock and grid ----------------------------------------------------------------------------
class ClockResponse(BaseModel):
    running_slot: SlotLabel
    last_closed_slot: SlotLabel | None
    slot_length_min: int
    slot_seconds: float = Field(description="real seconds per slot; 0 = fast-forward")
    slot_completion_pct: float
    fee_deadline: float = Field(description="unix time at which the running slot closes")
    seconds_to_deadline: float
    simulated_time: str = Field(description="start of the running slot, local time")
    time_zone: str | None = Field(
        default=None, description="IANA zone of the slot labels (simulated local time), e.g. Europe/Berlin"
    )
    server_time: float
    finished: bool = Field(description="the scenario's days are simulated: no slot closes any more")


class Asset(BaseModel):
    type: str
    params: dict[str, Any]


class MarketNode(BaseModel):
    area_uuid: str
    name: str
    parent_uuid: str | None
    level: int = Field(description="0 grid, 1 community, 2 house")
    level_name: Literal["grid", "community", "house"]
    current_market_fee: float = Field(description="ct/kWh in force in the running slot")
    next_market_fee: float = Field(description="ct/kWh queued for the next slot")
    import_limit_kwh: float | None = Field(
        None, description="energy that may enter the market per slot [kWh]; null: no limit set"
    )
    export_limit_kwh: float | None = Field(
        None, description="energy that may leave the market per slot [kWh]; null: no limit set"
    )
    assets: list[Asset]


class GridResponse(BaseModel):
    scenario: str
    fee_limits: dict[str, float]
    markets: list[MarketNode]


# --- stats and market cycles ----------------------------------------------------------------
# The stats fields come from the table of the slot statistics (app.exchange.stat_table): name on
# the wire, unit, whether null, what it means.


def _stat_field(stat: SlotStat, description: str | None = None, alias: str | None = None) -> tuple:
    kind = float | None if stat.nullable else float
    return kind, Field(alias=alias, description=f"{stat.unit}; {description or stat.description}")


def _stat_fields(
    stats: tuple[SlotStat, ...], groups: dict[str, type[BaseModel]], aliases: bool = True
) -> dict[str, tuple]:
    """pydantic fields of ``stats`` by wire name, with their ``aliases`` or not; a nested value
    (``group.name``) as the model ``groups[group]``."""
    fields: dict[str, tuple] = {}
    for stat in stats:
        group, _, name = stat.api_name.rpartition(".")
        if group:
            fields.setdefault(group, (groups[group], ...))
        else:
            fields[name] = _stat_field(stat)
        for alias in stat.aliases if aliases else ():
            fields[alias] = _stat_field(
                stat, f"the slot's {stat.label.lower()} (= {stat.api_name}); x4 for kW at 15 min"
            )
    return fields


def _grouped(group: str) -> tuple[SlotStat, ...]:
    return tuple(s for s in SLOT_STATS if s.api_name is not None and s.api_name.startswith(group + "."))


# ``import`` is a Python keyword: the field is ``import_`` with the alias ``import``
Throughput = create_model(
    "Throughput",
    __config__=ConfigDict(populate_by_name=True, serialize_by_alias=True),
    **{
        name + "_" * keyword.iskeyword(name): _stat_field(s, alias=name)
        for s in _grouped("area_throughput")
        for name in [s.api_name.rpartition(".")[2]]
    },
)
_GROUPS = {"area_throughput": Throughput}

MarketStats = create_model(
    "MarketStats",
    __doc__="A market's ``market_stats`` of one slot.",
    **_stat_fields(tuple(s for s in SLOT_STATS if s.answer == MARKET_STATS), _GROUPS),
)
DsoMarketStats = create_model(
    "DsoMarketStats",
    __base__=MarketStats,
    __doc__="A market's ``dso_market_stats`` of one slot: its ``market_stats`` and the DSO's fields.",
    **_stat_fields(tuple(s for s in SLOT_STATS if s.answer == DSO_MARKET_STATS), _GROUPS),
)


class _MarketCycleEntry(BaseModel):
    # the fees of the event are named from the slot now running (see app.exchange.events)
    area_uuid: str
    name: str
    parent_uuid: str | None
    level: int
    last_market_fee: float = Field(description="ct/kWh in force in the slot that closed")
    current_market_fee: float = Field(description="ct/kWh in force in the slot now running")
    next_market_fee: float = Field(description="ct/kWh queued for the slot after it")
    last_market_stats: MarketStats


MarketCycleEntry = create_model(
    "MarketCycleEntry",
    __base__=_MarketCycleEntry,
    **_stat_fields(tuple(s for s in SLOT_STATS if s.in_cycle), _GROUPS, aliases=False),
)


class MarketInfo(BaseModel):
    event: Literal["market"] = "market"
    market_slot: SlotLabel = Field(description="the slot now running (N)")
    last_market_slot: SlotLabel = Field(description="the slot that just closed (N-1)")
    slot_length_min: int
    feed_in_tariff_rate: float
    market_maker_rate: float
    markets: list[MarketCycleEntry]


class MarketCyclesResponse(BaseModel):
    cycles: list[MarketInfo]
    last_market_slot: SlotLabel | None = Field(description="pass as ?after= to get the next ones")
    more: bool = Field(description="true when more cycles are waiting beyond this page")


class HistoryRow(BaseModel):
    slot: SlotLabel
    stats: DsoMarketStats


class HistoryResponse(BaseModel):
    area_uuid: str
    name: str
    rows: list[HistoryRow]


# --- batch commands ---------------------------------------------------------------------------
class StatsData(_Strict):
    market_slots: SlotLabel | list[SlotLabel] | None = Field(
        default=None, description="slots to report; default: the last closed slot"
    )


class MarketStatsCommand(_Strict):
    type: Literal["market_stats"]
    data: StatsData = Field(default_factory=StatsData)


class DsoMarketStatsCommand(_Strict):
    type: Literal["dso_market_stats"]
    data: StatsData = Field(default_factory=StatsData)


class GridFeesData(_Strict):
    # strict: a JSON number only, never "3" or true (lax mode would read them as 3.0 and 1.0)
    fee_const: float = Field(
        ge=0,
        allow_inf_nan=False,
        strict=True,
        description="ct/kWh from the next slot. -0.0 is taken, stored and echoed as 0.0; a fee above 0 "
        "but below the fee's resolution of 1e-6 ct/kWh (e.g. a subnormal 5e-324) is refused with "
        "invalid_fee, never rounded",
    )


class GridFeesCommand(_Strict):
    type: Literal["grid_fees"]
    data: GridFeesData


Command = Annotated[MarketStatsCommand | DsoMarketStatsCommand | GridFeesCommand, Field(discriminator="type")]


class BatchRequest(_Strict):
    batch_commands: dict[str, list[dict[str, Any]]] = Field(
        description="{area_uuid: [command, ...]}; each command is validated on its own",
        json_schema_extra={
            "additionalProperties": {"type": "array", "items": {"$ref": "#/components/schemas/Command"}}
        },
    )
    transaction_id: str | None = Field(
        default=None, min_length=1, max_length=200, description="resending the same id applies nothing twice"
    )


class CommandResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: Literal["ready", "error"]
    command: str | None
    area_uuid: str
    error: str | None = None
    error_message: str | None = None


class BatchResponse(BaseModel):
    transaction_id: str
    responses: dict[str, list[CommandResponse]]


class BatchErrorResponse(BatchResponse):
    error: str
    message: str
