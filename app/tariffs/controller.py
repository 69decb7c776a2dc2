"""Congestion controller: a PI law that steers a market's import and export towards limits.

Per closed slot ``n`` the normalised error is the worse of the two directions,

    e_n = max((import_n - import_limit) / import_limit, (export_n - export_limit) / export_limit)

(0 at the limit, +0.5 for 50 % over it, -1 for no flow at all), so one pair of gains serves a
market whose congestion is import in the evening and PV export at midday. Slots whose import or
export is unknown (NaN) are skipped. The law is the PI controller in *velocity form*:

    fee_next = fee_n + kp * (e_n - e_{n-1}) + ki * e_n

with ``fee_n`` the fee in force in the last closed slot (``params.base_fee_ct_per_kwh`` when the
history has none), then at most ``max_step_ct_per_kwh`` up or down, then clamped to the params'
``[min_fee, max_fee]`` and to the exchange's ``limits``.

Why the velocity form: the positional form ``base + kp * e_n + ki * sum(e)`` needs the sum of all
errors, either as hidden state (lost on a restart, wrong after a manual override) or summed over
the whole history. The velocity form needs only the last two errors and the fee in force, so the
model stays a pure function of the history, and it has anti-windup for free: the integral *is*
the fee in force, and a clamped fee is what the next step starts from. A fee held at the maximum
while the error stays positive accumulates nothing, and the first negative error lowers it in the
very next slot. For the same reason an operator's manual fee is taken over without a bump.

``deadband`` (a fraction of the limit) makes the law ignore small errors: an error ``e`` counts
as ``sign(e) * max(|e| - deadband, 0)``, continuous, so the fee does not chatter around the limit.

With one measured slot only, ``e_{n-1}`` counts as 0: the first step is then ``(kp + ki) * e_n``,
as a positional PI starting from the base fee would make it.

``forecast_weight`` adds a look-ahead: the error of the *same slot one day earlier* (the history
row ``slot - slots_per_day``) is taken as a forecast of the coming slot's error and mixed in,
``E = (1 - w) * e_measured + w * e_yesterday``, for both ``e_n`` and ``e_{n-1}``. A daily PV or
evening peak is then met as it builds up rather than one slot late. Where yesterday's slot is not
in the history (the first day, a NaN slot) the measured error is used alone.

Timing: the fee computed while slot N+1 runs applies from N+2, and the history ends at the last
closed slot N, so ``fee_n`` is the fee of slot N, not that of the running slot. The law therefore
moves two interleaved sequences (even and odd slots), each by the full step every other slot;
closed-loop it converges (tested), a little slower than with the running slot's fee as base.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.tariffs.base import FeeLimits, MarketHistory, SlotInfo, check_fee_range

_ERROR_BOUND = 1e6  # normalised errors beyond this (inf, 1e300 kWh) are as bad as it gets


class ControllerParams(BaseModel):
    """Limits [kWh per slot], gains [ct/kWh per unit of normalised error] and fee bounds [ct/kWh]."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: Literal["controller"] = "controller"
    import_limit_kwh: float = Field(gt=0, description="import the market should stay below [kWh per slot]")
    export_limit_kwh: float = Field(gt=0, description="export the market should stay below [kWh per slot]")
    kp_ct_per_kwh: float = Field(2.0, ge=0, description="fee change per change of the normalised error")
    ki_ct_per_kwh: float = Field(1.0, ge=0, description="fee change per slot per unit of normalised error")
    base_fee_ct_per_kwh: float = Field(2.0, ge=0, description="the fee to start from without a history")
    min_fee_ct_per_kwh: float = Field(0.0, ge=0)
    max_fee_ct_per_kwh: float = Field(30.0, ge=0)
    max_step_ct_per_kwh: float = Field(2.0, gt=0, description="largest fee change from one slot to the next")
    max_step_down_ct_per_kwh: float | None = Field(
        None, gt=0, description="largest fall per slot (default: max_step); a slow fall avoids a rebound peak"
    )
    deadband: float = Field(0.0, ge=0, le=1, description="errors within +-deadband of the limit count as 0")
    forecast_weight: float = Field(0.0, ge=0, le=1, description="weight of the same-slot-yesterday error")

    @model_validator(mode="after")
    def _ordered_fees(self) -> ControllerParams:
        check_fee_range(self.min_fee_ct_per_kwh, self.base_fee_ct_per_kwh, self.max_fee_ct_per_kwh)
        return self


def slot_errors(history: MarketHistory, params: ControllerParams) -> np.ndarray:
    """The normalised error of every closed slot (NaN where import or export is unknown)."""
    imports = np.asarray(history.import_kwh, dtype=float)
    exports = np.asarray(history.export_kwh, dtype=float)
    with np.errstate(all="ignore"):
        errors = np.maximum(
            (imports - params.import_limit_kwh) / params.import_limit_kwh,
            (exports - params.export_limit_kwh) / params.export_limit_kwh,
        )
    return np.clip(errors, -_ERROR_BOUND, _ERROR_BOUND)  # NaN stays NaN


def _dead(error: float, deadband: float) -> float:
    return math.copysign(max(abs(error) - deadband, 0.0), error)


def _yesterday_error(errors: np.ndarray, slots: np.ndarray, slot: int, slots_per_day: int) -> float | None:
    rows = np.flatnonzero(slots == slot - slots_per_day)
    if rows.size == 0 or np.isnan(errors[rows[-1]]):
        return None
    return float(errors[rows[-1]])


def next_fee(history: MarketHistory, slot: SlotInfo, params: ControllerParams, limits: FeeLimits) -> float:
    """The fee [ct/kWh] for ``slot``: the fee in force moved by one PI step (see the module doc)."""
    low = max(params.min_fee_ct_per_kwh, limits.min_ct_per_kwh)
    high = min(params.max_fee_ct_per_kwh, limits.max_ct_per_kwh)
    running = history.running_fee()
    fee = running if running is not None else params.base_fee_ct_per_kwh
    fee = min(max(fee, low), high)

    errors = slot_errors(history, params)
    known = np.flatnonzero(~np.isnan(errors))
    if known.size == 0:
        return limits.clamp(fee)  # nothing measured: hold the fee
    e_now = float(errors[known[-1]])
    e_before = float(errors[known[-2]]) if known.size > 1 else 0.0

    w = params.forecast_weight
    if w > 0:
        slots = np.asarray(history.slot)
        per_day = max(1, round(1440 / max(1, slot.slot_length_min)))
        ahead = _yesterday_error(errors, slots, slot.slot, per_day)
        before = _yesterday_error(errors, slots, slot.slot - 1, per_day)
        if ahead is not None:
            e_now = (1 - w) * e_now + w * ahead
        if before is not None:
            e_before = (1 - w) * e_before + w * before

    e_now, e_before = _dead(e_now, params.deadband), _dead(e_before, params.deadband)
    step = params.kp_ct_per_kwh * (e_now - e_before) + params.ki_ct_per_kwh * e_now
    if math.isnan(step):  # huge gains times huge errors of both signs: no direction to go
        step = 0.0
    down = (
        params.max_step_ct_per_kwh
        if params.max_step_down_ct_per_kwh is None
        else params.max_step_down_ct_per_kwh
    )
    step = min(max(step, -down), params.max_step_ct_per_kwh)
    return limits.clamp(min(max(fee + step, low), high))
