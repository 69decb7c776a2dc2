"""Critical-peak pricing: another model's fee, multiplied in announced event slots.

``fee = multiplier * base fee`` in a slot inside an event, the base fee outside, then clamped to
the exchange's limits. Events are either dated (``{"start": datetime, "end": datetime}``, local
time, end excluded) or daily windows (``{"from": "17:00", "to": "20:00", "days": ["monday", ...]}``,
every listed day; a window with ``to`` before ``from`` runs past midnight and belongs to the day it
starts on; ``"to": "24:00"`` is the end of the day). A slot is inside an event when its *start*
is, so an event from 17:00 to 19:00 covers the slots starting 17:00 .. 18:45.

The base model sees the fees *it* set: in history slots that were inside an event the fee is
divided by the multiplier before the base model reads it. Only the congestion controller reads
past fees, and without this it would take the raised event fee as its own and carry it past the
event. (Where the limits clipped the raised fee, the division gives a little less than the base
fee was; the controller moves from there.)
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.tariffs import constant, controller, peak_tiers, predictive, tou
from app.tariffs.base import FeeLimits, MarketHistory, SlotInfo

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_CLOCK = re.compile(r"([01]?\d|2[0-4]):([0-5]\d)")

BaseFeeParams = Annotated[
    constant.ConstantParams
    | tou.TouParams
    | peak_tiers.PeakTierParams
    | controller.ControllerParams
    | predictive.PredictiveParams,
    Field(discriminator="model"),
]
"""The models a critical-peak overlay can run on (every model but itself), tagged by ``model``."""

BASE_NEXT_FEE: dict[str, Callable[[MarketHistory, SlotInfo, Any, FeeLimits], float]] = {
    "constant": constant.next_fee,
    "tou": tou.next_fee,
    "peak_tiers": peak_tiers.next_fee,
    "controller": controller.next_fee,
    "predictive": predictive.next_fee,
}


class DatedEvent(BaseModel):
    """One announced event, ``start`` included and ``end`` excluded, in local time without offset."""

    model_config = ConfigDict(extra="forbid")

    start: dt.datetime
    end: dt.datetime

    @field_validator("start", "end")
    @classmethod
    def _local(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is not None:
            raise ValueError("give the local time without a UTC offset, as the exchange's slots are")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> DatedEvent:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end.isoformat()}) must be after start ({self.start.isoformat()})")
        return self


class DailyWindow(BaseModel):
    """A window ``from``-``to`` (``HH:MM``) on the listed weekdays (every day when left out)."""

    model_config = ConfigDict(
        extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    from_: str = Field(alias="from")
    to: str
    days: list[str] = Field(default_factory=lambda: list(WEEKDAYS), min_length=1)

    @field_validator("from_", "to")
    @classmethod
    def _clock(cls, value: str, info: ValidationInfo) -> str:
        m = _CLOCK.fullmatch(value.strip())
        name = "from" if info.field_name == "from_" else "to"
        if not m or (m[1] == "24" and (m[2] != "00" or name == "from")):
            allowed = "00:00 .. 23:59" if name == "from" else "00:00 .. 24:00"
            raise ValueError(f"{value!r} is not a time HH:MM ({allowed})")
        return f"{int(m[1]):02d}:{m[2]}"

    @field_validator("days", mode="before")
    @classmethod
    def _weekdays(cls, days: Any) -> Any:
        if not isinstance(days, list):
            return days
        named = []
        for day in days:
            key = str(day).strip().lower()
            match = [w for w in WEEKDAYS if w == key or (len(key) >= 3 and w.startswith(key))]
            if len(match) != 1:
                raise ValueError(f"{day!r} is not a weekday; use {', '.join(WEEKDAYS)}")
            named.append(match[0])
        return sorted(set(named), key=WEEKDAYS.index)

    @model_validator(mode="after")
    def _not_empty(self) -> DailyWindow:
        if _minutes(self.from_) == _minutes(self.to):
            raise ValueError(f"the window {self.from_}-{self.to} is empty; use 00:00-24:00 for a whole day")
        return self


def _minutes(clock: str) -> int:
    return int(clock[:2]) * 60 + int(clock[3:])


def _event_kind(value: Any) -> str | None:
    if isinstance(value, DatedEvent | DailyWindow):
        return "dated" if isinstance(value, DatedEvent) else "daily"
    if isinstance(value, dict):
        if "start" in value or "end" in value:
            return "dated"
        if "from" in value or "from_" in value or "to" in value or "days" in value:
            return "daily"
    return None


Event = Annotated[
    Annotated[DatedEvent, Tag("dated")] | Annotated[DailyWindow, Tag("daily")],
    Discriminator(
        _event_kind,
        custom_error_type="event_kind",
        custom_error_message=(
            'an event is {"start": datetime, "end": datetime} or {"from": "HH:MM", "to": "HH:MM", '
            '"days": [weekday names]}'
        ),
    ),
]


class CriticalPeakParams(BaseModel):
    """A base model, the factor for event slots and the events."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: Literal["critical_peak"] = "critical_peak"
    base: BaseFeeParams
    multiplier: float = Field(ge=1, le=20, description="event fee / base fee")
    events: list[Event] = Field(default_factory=list, max_length=1000)


def event_mask(starts: np.ndarray, events: list[DatedEvent | DailyWindow]) -> np.ndarray:
    """Which of the slot start times ``starts`` (``datetime64``, local) lie inside an event."""
    starts = starts.astype("datetime64[s]")
    inside = np.zeros(starts.shape, dtype=bool)
    days = starts.astype("datetime64[D]")
    minute = (starts - days).astype("timedelta64[s]").astype(np.int64) / 60.0
    weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    for event in events:
        if isinstance(event, DatedEvent):
            inside |= (starts >= np.datetime64(event.start, "s")) & (starts < np.datetime64(event.end, "s"))
            continue
        listed = np.isin(weekday, [WEEKDAYS.index(d) for d in event.days])
        listed_yesterday = np.isin((weekday + 6) % 7, [WEEKDAYS.index(d) for d in event.days])
        begin, end = _minutes(event.from_), _minutes(event.to)
        if begin < end:
            inside |= listed & (minute >= begin) & (minute < end)
        else:  # past midnight: the evening part on a listed day, the morning part the day after
            inside |= (listed & (minute >= begin)) | (listed_yesterday & (minute < end))
    return inside


def _slot_starts(slots: np.ndarray, slot: SlotInfo) -> np.ndarray:
    """Start times of slot numbers ``slots``, counted from ``slot`` (whose start is known)."""
    start = np.datetime64(slot.start.replace(tzinfo=None), "s")
    length = np.timedelta64(60 * slot.slot_length_min, "s")
    return start + (np.asarray(slots, dtype=np.int64) - slot.slot) * length


def next_fee(history: MarketHistory, slot: SlotInfo, params: CriticalPeakParams, limits: FeeLimits) -> float:
    """The base model's fee [ct/kWh] for ``slot``, times ``multiplier`` inside an event, within limits."""
    base_history = history
    if params.events and len(history):
        raised = event_mask(_slot_starts(history.slot, slot), params.events)
        if raised.any():
            fees = np.where(
                raised,
                np.asarray(history.fee_ct_per_kwh, dtype=float) / params.multiplier,
                history.fee_ct_per_kwh,
            )
            base_history = MarketHistory(history.slot, history.import_kwh, history.export_kwh, fees)
    fee = BASE_NEXT_FEE[params.base.model](base_history, slot, params.base, limits)
    if params.events and event_mask(_slot_starts(np.array([slot.slot]), slot), params.events)[0]:
        fee *= params.multiplier
    return limits.clamp(fee)
