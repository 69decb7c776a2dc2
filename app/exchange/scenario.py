"""Scenario files: the grid tree, its assets, prices, fee limits and the seed.

A scenario is YAML or JSON validated with pydantic v2. Errors are reported one per line as
``<field path>: <problem>`` (``grid.communities[1].houses[3].assets[0].kwp: must be >= 0``) so
that whoever edits a 10,000-line generated file can find the line to fix.

Units are in the field names: ``_kwh``, ``_kw``, ``_kwp``, ``_ct_per_kwh``, ``_min``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)


class ScenarioError(ValueError):
    """A scenario file that cannot be used; ``problems`` holds one ``path: message`` each."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: invalid scenario\n  " + "\n  ".join(problems))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _hhmm(value: str) -> str:
    try:
        dt.datetime.strptime(value, "%H:%M")
    except (TypeError, ValueError):
        raise ValueError("must be a time of day as HH:MM") from None
    return value


class Load(_Model):
    """Household load from the BDEW H25 standard profile, scaled to ``annual_kwh``."""

    type: Literal["load"]
    annual_kwh: float = Field(ge=0, le=1e7)


class PV(_Model):
    """A PV plant: clear-sky irradiance, PVWatts DC and inverter, seeded cloud cover."""

    type: Literal["pv"]
    kwp: float = Field(ge=0, le=1e5)
    tilt_deg: float = Field(default=30, ge=0, le=90)
    azimuth_deg: float = Field(default=180, ge=0, le=360)


class Battery(_Model):
    """A home battery behind the house meter."""

    type: Literal["battery"]
    capacity_kwh: float = Field(ge=0, le=1e5)
    power_kw: float = Field(ge=0, le=1e5)
    efficiency: float = Field(default=0.95, gt=0, le=1)
    initial_soc: float = Field(default=0.5, ge=0, le=1)
    min_soc: float = Field(default=0.1, ge=0, le=1)

    @model_validator(mode="after")
    def _soc_order(self) -> Battery:
        if self.min_soc > self.initial_soc:
            raise ValueError("min_soc must be <= initial_soc")
        return self


class FlexibleLoad(_Model):
    """An EV or heat pump: needs ``energy_kwh`` between ``available_from`` and ``due_by``.

    Inside that window it charges slower when the price it would pay (supplier rate plus the
    fees queued for the slot) is high, but never so slowly that it misses ``due_by``.
    """

    type: Literal["flexible_load"]
    kind: Literal["ev", "heat_pump"] = "ev"
    energy_kwh: float = Field(ge=0, le=1e5)
    power_kw: float = Field(gt=0, le=1e5)
    available_from: str = "17:00"
    due_by: str = "07:00"
    price_full_ct_per_kwh: float = Field(
        default=30, ge=0, description="at or below this price it runs at full power"
    )
    price_min_ct_per_kwh: float = Field(
        default=45, ge=0, description="at or above this price it only runs when it must"
    )

    _check_from = field_validator("available_from")(_hhmm)
    _check_due = field_validator("due_by")(_hhmm)

    @model_validator(mode="after")
    def _price_order(self) -> FlexibleLoad:
        if self.price_min_ct_per_kwh <= self.price_full_ct_per_kwh:
            raise ValueError("price_min_ct_per_kwh must be > price_full_ct_per_kwh")
        if self.available_from == self.due_by:
            raise ValueError("available_from and due_by must differ")
        return self


Asset = Annotated[Load | PV | Battery | FlexibleLoad, Field(discriminator="type")]


class House(_Model):
    name: str = Field(min_length=1, max_length=120)
    fee_ct_per_kwh: float = Field(default=0, ge=0)
    count: int = Field(default=1, ge=1, le=100_000, description="identical houses to create")
    assets: list[Asset] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_of_each(self) -> House:
        for kind in ("load", "pv", "battery"):
            if sum(a.type == kind for a in self.assets) > 1:
                raise ValueError(f"a house has at most one {kind}")
        return self


class FlowLimits(_Model):
    """What the market's connection can carry per slot: the physical limit a DSO steers against.

    ``import_kwh_per_slot`` is the energy that may enter the market's subtree in one slot,
    ``export_kwh_per_slot`` what may leave it (for the grid market: from / to the external
    supplier). Unset: no limit on that direction. Limits do not change the simulation (they are
    left out of a stored run's fingerprint); alerts, charts, the map and the congestion models
    read them.
    """

    import_kwh_per_slot: float | None = Field(default=None, gt=0, le=1e9)
    export_kwh_per_slot: float | None = Field(default=None, gt=0, le=1e9)


class Community(_Model):
    name: str = Field(min_length=1, max_length=120)
    fee_ct_per_kwh: float = Field(default=1, ge=0)
    limits: FlowLimits | None = None
    houses: list[House] = Field(min_length=1)


class Grid(_Model):
    name: str = Field(default="Grid", min_length=1, max_length=120)
    fee_ct_per_kwh: float = Field(default=2, ge=0)
    limits: FlowLimits | None = None
    communities: list[Community] = Field(min_length=1)


class Supplier(_Model):
    """The external supplier (market maker / infinite bus) connected to the grid market.

    ``sell_rate_ct_per_kwh`` is one number or 24 hourly values; unmatched demand buys at it
    plus the fees on the way down. Unmatched supply sells at ``feed_in_rate_ct_per_kwh``
    minus the fees on the way up, and is curtailed when that would be negative.
    """

    name: str = "External Supplier"
    sell_rate_ct_per_kwh: float | list[float] = 30.0
    feed_in_rate_ct_per_kwh: float = Field(default=8.0, ge=0)

    @field_validator("sell_rate_ct_per_kwh")
    @classmethod
    def _rates(cls, value: float | list[float]) -> float | list[float]:
        values = value if isinstance(value, list) else [value]
        if isinstance(value, list) and len(value) != 24:
            raise ValueError(f"must be one number or 24 hourly values, got {len(value)}")
        if any(v < 0 for v in values):
            raise ValueError("must be >= 0")
        return value

    def hourly_sell_ct_per_kwh(self) -> list[float]:
        rate = self.sell_rate_ct_per_kwh
        return list(rate) if isinstance(rate, list) else [float(rate)] * 24


class Location(_Model):
    latitude: float = Field(default=52.52, ge=-90, le=90)
    longitude: float = Field(default=13.40, ge=-180, le=180)
    altitude_m: float = Field(default=34, ge=-500, le=9000)
    tz: str = "Europe/Berlin"

    @field_validator("tz")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class FeeLimits(_Model):
    min_ct_per_kwh: float = Field(default=0, ge=0)
    max_ct_per_kwh: float = Field(default=100, gt=0, le=1e6)


class Scenario(_Model):
    name: str = Field(default="scenario", min_length=1)
    start: dt.datetime = Field(description="local time of the first slot, no time zone")
    slot_length_min: int = Field(default=15, ge=1, le=60)
    seed: int = Field(default=0, ge=0)
    matching: Literal["pay_as_bid", "pay_as_clear"] = "pay_as_bid"
    location: Location = Field(default_factory=Location)
    supplier: Supplier = Field(default_factory=Supplier)
    fee_limits: FeeLimits = Field(default_factory=FeeLimits)
    days: int | None = Field(
        default=None,
        ge=1,
        le=3660,
        description="simulated days after which the exchange ends (a gsy-e simulation's duration); "
        "unset: it runs until stopped",
    )
    grid: Grid

    @property
    def end_slot(self) -> int | None:
        """The first slot after the scenario's end (slots count from ``start``); None: no end."""
        return None if self.days is None else self.days * (1440 // self.slot_length_min)

    def has_ended(self, running_slot: int) -> bool:
        """With ``running_slot`` next to run, the scenario's days are simulated: no slot is left."""
        end = self.end_slot
        return end is not None and running_slot >= end

    @field_validator("start")
    @classmethod
    def _naive_on_slot(cls, value: dt.datetime) -> dt.datetime:
        return value.replace(tzinfo=None, second=0, microsecond=0)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if 1440 % self.slot_length_min:
            raise ValueError("slot_length_min must divide a day (1440 minutes)")
        if (self.start.hour * 60 + self.start.minute) % self.slot_length_min:
            raise ValueError("start must be at the beginning of a slot (a multiple of slot_length_min)")
        if self.fee_limits.min_ct_per_kwh > self.fee_limits.max_ct_per_kwh:
            raise ValueError("fee_limits.min_ct_per_kwh must be <= max_ct_per_kwh")
        fees = [self.grid.fee_ct_per_kwh]
        for c in self.grid.communities:
            fees.append(c.fee_ct_per_kwh)
            fees.extend(h.fee_ct_per_kwh for h in c.houses)
        if max(fees) > self.fee_limits.max_ct_per_kwh:
            raise ValueError("an initial fee is above fee_limits.max_ct_per_kwh")
        return self

    @property
    def slots_per_day(self) -> int:
        return 1440 // self.slot_length_min

    @property
    def start_offset_slots(self) -> int:
        """Slots from midnight of the start date to ``start`` (a run may start at 16:00)."""
        return (self.start.hour * 60 + self.start.minute) // self.slot_length_min

    def day_and_slot(self, slot: int) -> tuple[int, int]:
        """(day since the start date, slot of that day) of run slot ``slot``."""
        return divmod(slot + self.start_offset_slots, self.slots_per_day)

    def supplier_rates(self, slot: int) -> tuple[float, float]:
        """(sell, feed-in) rate of the external supplier in ``slot`` [ct/kWh]."""
        hour = self.day_and_slot(slot)[1] * self.slot_length_min // 60
        return float(self.supplier.hourly_sell_ct_per_kwh()[hour]), float(
            self.supplier.feed_in_rate_ct_per_kwh
        )

    def market_limits(self) -> dict[str, FlowLimits]:
        """The flow limits set in the scenario, by market name (grid and communities only)."""
        found = {self.grid.name: self.grid.limits}
        found.update({c.name: c.limits for c in self.grid.communities})
        return {name: limits for name, limits in found.items() if limits is not None}

    def house_count(self) -> int:
        return sum(h.count for c in self.grid.communities for h in c.houses)


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("load", "pv", "battery", "flexible_load") and out.endswith("]"):
            continue  # pydantic adds the union tag to the path; the type is in the message
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _format_error(err: dict[str, Any]) -> str:
    kind, ctx = err["type"], err.get("ctx", {})
    messages = {
        "greater_than_equal": lambda: f"must be >= {_num(ctx.get('ge'))}",
        "greater_than": lambda: f"must be > {_num(ctx.get('gt'))}",
        "less_than_equal": lambda: f"must be <= {_num(ctx.get('le'))}",
        "less_than": lambda: f"must be < {_num(ctx.get('lt'))}",
        "missing": lambda: "is required",
        "extra_forbidden": lambda: "unknown field",
        "union_tag_invalid": lambda: (
            f"unknown asset type {ctx.get('tag')!r} (expected one of {ctx.get('expected_tags')})"
        ),
        "union_tag_not_found": lambda: "an asset needs a 'type'",
        "too_short": lambda: f"needs at least {ctx.get('min_length')} item(s)",
    }
    if kind in messages:
        return f"{_format_loc(err['loc'])}: {messages[kind]()}"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{_format_loc(err['loc'])}: {msg}"


def parse_scenario(data: Any, source: str = "scenario") -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError(source, ["(top level): must be a mapping of fields"])
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(source, [_format_error(e) for e in exc.errors()]) from None


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; every failure is a ``ScenarioError``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(str(path), [f"cannot read file: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise ScenarioError(str(path), ["file is not UTF-8 text"]) from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        if isinstance(exc, json.JSONDecodeError):
            line = f" at line {exc.lineno}"
        raise ScenarioError(str(path), [f"not valid YAML/JSON{line}: {exc}"]) from None
    return parse_scenario(data, str(path))


def dump_scenario(scenario: Scenario) -> str:
    return yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False)
