"""Predictive congestion controller: forecast the coming slot's flows, set the fee that keeps them
under the market's limits, and hold it until the energy it deferred has been served.

The plant. A fee is in force in slot ``t``; flexible loads (EV, heat pump) and batteries see it
before ``t`` starts and defer charging, discharge or curtail PV export. The controller's history
ends at the last closed slot ``n`` and its fee is for the target slot ``t`` (``t = n + 2`` live: a
fee computed once ``n`` closed is sent while ``n + 1`` runs and is in force from ``n + 2``), so it
must *forecast* ``t`` rather than react to ``n``. Daily life repeats: the evening EV peak and the
noon PV peak come at the same quarter hours every day, which is what the forecast rests on.

**Forecast** (per direction, import and export, ``P`` = slots per day)::

    ref(s)   = (w_d * x(s - P) + w_w * x(s - 7P)) / (w_d + w_w)      # same slot yesterday, last week
    x_hat(t) = max(ref(t) + trend * (x(n) - ref(n)), 0)              # plus the running trend

``x(s)`` is the measured flow [kWh per slot] of slot ``s``; a term whose slot is missing or NaN
drops out of ``ref`` and its weight with it. The trend term carries today's deviation from the
reference (a cloudy morning, a cold evening) into the forecast. Without any same-slot history
(the first day) the forecast is persistence, ``x_hat(t) = x(n)``.

**Control law.** ``ref`` was measured under the fees then in force, ``f_ref(t)`` (same weights).
With the normalised forecast error against the *target* ``T = target_share * limit``,

    e(t) = max((x_hat_imp(t) - T_imp) / T_imp, (x_hat_exp(t) - T_exp) / T_exp)

(the worse direction, 0 on target, clipped to [-1, 10]), the fee is

    fee(t) = mean(f_ref(t + k) for |k| <= smooth) + gain * e(t)     # with same-slot history
    fee(t) = fee_running + gain * e(t)                                # the first day

(``smooth = smooth_slots``; with 0 the learned fee is that slot's alone, with 2 the mean of the
five around it, which keeps the learned profile free of single-slot cliffs: a fee that drops by
10 ct/kWh from one slot to the next calls every battery out to charge at once).

This is *iterative learning control*: each quarter hour keeps the fee that held it on target the
day before, corrected by how far the forecast says it will miss today. A fee that was more than
needed (``e < 0``) is lowered day by day, one that was too low is raised, so over a few days the
fee profile converges to the lowest one that keeps every slot on target, and the trend term
handles what differs today. One gain serves import (evening) and export (PV noon) because the
error is normalised by each direction's target.

**No rebound (hold).** A fee that falls while deferred energy is pending releases it at once (EVs
jump to full power). The fleet's deferred import over the last ``hold_window_slots`` is
estimated as ``D = sum(max(ref_imp(k) - x_imp(k), 0))`` (what the same slots took yesterday/last
week but did not take today). While ``D`` exceeds what the target slot can still take,
``release_slots * (T_imp - x_hat_imp(t))``, the fee does not fall below the fee in force; and
it never falls by more than ``max_fall_ct_per_kwh`` per slot. It may rise at once (by at most
``max_rise_ct_per_kwh``): a congestion must be met, a relief can wait.

**Export alone** (``export_fee_cap_ct_per_kwh``). The only lever on export is curtailment: each
owner stops exporting when the feed-in rate less the fees falls below their floor, so a fee
above the feed-in rate throws away every kWh of PV. While the import forecast is on target the
fee is therefore at most this cap (falling to it at ``max_fall`` per slot), which curtails only
the owners with the highest floors. ``None``: no cap (export raises the fee like import).

**Leak** (``leak``). The learned fee is multiplied by ``1 - leak``: a fee that is not needed any
more fades day by day even where the forecast sits on target, so the profile does not stay at
its highest (what members pay is part of the cost).

Finally the fee is clamped to ``[min_fee, max_fee]`` and the exchange's limits; any NaN or inf
in the history only removes terms, so the fee is finite and within the limits for any history.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.tariffs.base import FeeLimits, MarketHistory, SlotInfo, check_fee_range

_ERROR_LOW, _ERROR_HIGH = -1.0, 10.0
_KWH_BOUND = 1e12  # flows beyond this [kWh per slot] are treated as this (inf, 1e300)


class PredictiveParams(BaseModel):
    """Limits [kWh per slot], forecast weights, gain [ct/kWh per unit of error], fee bounds [ct/kWh]."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: Literal["predictive"] = "predictive"
    import_limit_kwh: float = Field(gt=0, description="the market's import limit [kWh per slot]")
    export_limit_kwh: float = Field(gt=0, description="the market's export limit [kWh per slot]")
    target_share: float = Field(0.9, gt=0, le=1.5, description="aim at this share of each limit")
    gain_ct_per_kwh: float = Field(25.0, ge=0, description="fee change per unit of normalised forecast error")
    weight_yesterday: float = Field(0.7, ge=0, le=1, description="weight of the same slot yesterday")
    weight_last_week: float = Field(0.3, ge=0, le=1, description="weight of the same slot last week")
    trend: float = Field(0.5, ge=0, le=1, description="share of today's deviation carried into the forecast")
    base_fee_ct_per_kwh: float = Field(2.0, ge=0, description="the fee to start from without a history")
    min_fee_ct_per_kwh: float = Field(0.0, ge=0)
    max_fee_ct_per_kwh: float = Field(40.0, ge=0)
    max_rise_ct_per_kwh: float = Field(20.0, gt=0, description="largest rise from one slot to the next")
    max_fall_ct_per_kwh: float = Field(0.5, gt=0, description="largest fall from one slot to the next")
    hold_window_slots: int = Field(16, ge=1, le=192, description="slots over which deferred energy is summed")
    release_slots: float = Field(4.0, gt=0, le=96, description="slots over which deferred energy may return")
    smooth_slots: int = Field(
        2, ge=0, le=8, description="the learned fee is the mean over this many slots either side"
    )
    export_fee_cap_ct_per_kwh: float | None = Field(
        None,
        ge=0,
        description="while import is on target, export alone raises the fee to at most this",
    )
    leak: float = Field(
        0.0, ge=0, le=0.5, description="share of the learned fee forgotten each day (0: none)"
    )

    @model_validator(mode="after")
    def _ordered(self) -> PredictiveParams:
        check_fee_range(self.min_fee_ct_per_kwh, self.base_fee_ct_per_kwh, self.max_fee_ct_per_kwh)
        if self.weight_yesterday + self.weight_last_week <= 0:
            raise ValueError("weight_yesterday and weight_last_week cannot both be 0")
        return self


def _clean(values: np.ndarray) -> np.ndarray:
    """Flows as floats, NaN kept, +-inf and absurd values bounded, negatives as 0."""
    x = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.clip(x, 0.0, _KWH_BOUND)


class _Series:
    """One history column known (finite) values, looked up by slot number (the last row wins)."""

    def __init__(self, slots: np.ndarray, values: np.ndarray):
        keep = np.isfinite(values)
        slots, values = np.asarray(slots, dtype=np.int64)[keep], np.asarray(values, dtype=float)[keep]
        order = np.argsort(slots, kind="stable")
        self._slots, self._values = slots[order], values[order]

    def __call__(self, slot: int) -> float | None:
        i = int(np.searchsorted(self._slots, slot, side="right")) - 1
        if i < 0 or self._slots[i] != slot:
            return None
        return float(self._values[i])


def _reference(series: _Series, slot: int, per_day: int, params: PredictiveParams) -> float | None:
    """``ref(slot)``: the weighted same slot yesterday / last week (None when both are missing)."""
    total = weight = 0.0
    for lag_days, w in ((1, params.weight_yesterday), (7, params.weight_last_week)):
        value = series(slot - lag_days * per_day)
        if w > 0 and value is not None:
            total += w * value
            weight += w
    return total / weight if weight > 0 else None


def forecast_kwh(
    history: MarketHistory, target_slot: int, slot_length_min: int, params: PredictiveParams
) -> tuple[float | None, float | None]:
    """``(x_hat_imp, x_hat_exp)`` [kWh per slot] for ``target_slot`` (None when nothing is known)."""
    per_day = max(1, round(1440 / max(1, slot_length_min)))
    slots = np.asarray(history.slot, dtype=np.int64)
    out: list[float | None] = []
    for column in (history.import_kwh, history.export_kwh):
        values = _clean(column)
        series = _Series(slots, values)
        known = np.flatnonzero(np.isfinite(values))
        last = int(slots[known[-1]]) if known.size else None
        ref_t = _reference(series, target_slot, per_day, params)
        if ref_t is None:
            out.append(None if last is None else series(last))
            continue
        x_hat = ref_t
        if last is not None:
            ref_n = _reference(series, last, per_day, params)
            if ref_n is not None:
                x_hat += params.trend * (series(last) - ref_n)  # type: ignore[operator]
        out.append(max(x_hat, 0.0))
    return out[0], out[1]


def _error(x_hat: float | None, limit_kwh: float, share: float) -> float | None:
    if x_hat is None:
        return None
    target = share * limit_kwh
    return float(np.clip((x_hat - target) / target, _ERROR_LOW, _ERROR_HIGH))


def deferred_import_kwh(history: MarketHistory, slot_length_min: int, params: PredictiveParams) -> float:
    """``D``: import the last ``hold_window_slots`` took less than their reference [kWh]."""
    per_day = max(1, round(1440 / max(1, slot_length_min)))
    slots = np.asarray(history.slot, dtype=np.int64)
    values = _clean(history.import_kwh)
    series = _Series(slots, values)
    deferred = 0.0
    for row in range(max(0, len(slots) - params.hold_window_slots), len(slots)):
        x = series(int(slots[row]))
        ref = _reference(series, int(slots[row]), per_day, params)
        if x is not None and ref is not None:
            deferred += max(ref - x, 0.0)
    return min(deferred, _KWH_BOUND)


def next_fee(history: MarketHistory, slot: SlotInfo, params: PredictiveParams, limits: FeeLimits) -> float:
    """The fee [ct/kWh] for ``slot``: learned same-slot fee + gain x forecast error (module doc)."""
    low = max(params.min_fee_ct_per_kwh, limits.min_ct_per_kwh)
    high = min(params.max_fee_ct_per_kwh, limits.max_ct_per_kwh)
    if low > high:
        return limits.clamp(low)
    running = history.running_fee()
    running = params.base_fee_ct_per_kwh if running is None else running
    running = min(max(running, low), high)

    x_imp, x_exp = forecast_kwh(history, slot.slot, slot.slot_length_min, params)
    errors = [
        e
        for e in (
            _error(x_imp, params.import_limit_kwh, params.target_share),
            _error(x_exp, params.export_limit_kwh, params.target_share),
        )
        if e is not None
    ]
    if not errors:
        return limits.clamp(running)  # nothing measured: hold the fee
    error = max(errors)

    per_day = max(1, round(1440 / max(1, slot.slot_length_min)))
    fees = np.asarray(history.fee_ct_per_kwh, dtype=float)
    with np.errstate(invalid="ignore"):
        fees = np.where(np.isfinite(fees), np.clip(fees, low, high), np.nan)
    fee_series = _Series(np.asarray(history.slot, dtype=np.int64), fees)
    learned = [
        f
        for k in range(-params.smooth_slots, params.smooth_slots + 1)
        if (f := _reference(fee_series, slot.slot + k, per_day, params)) is not None
    ]
    start = float(np.mean(learned)) * (1 - params.leak) if learned else running
    fee = start + params.gain_ct_per_kwh * error
    import_error = errors[0] if x_imp is not None else None
    if params.export_fee_cap_ct_per_kwh is not None and (import_error is None or import_error <= 0):
        # only export is above target: a fee past the owners' curtailment floors throws every
        # kWh of PV away, so export alone lifts the fee to the cap (partial curtailment)
        fee = min(fee, max(params.export_fee_cap_ct_per_kwh, running - params.max_fall_ct_per_kwh))

    floor = running - params.max_fall_ct_per_kwh
    if x_imp is not None:
        room_kwh = params.target_share * params.import_limit_kwh - x_imp
        if deferred_import_kwh(history, slot.slot_length_min, params) > params.release_slots * room_kwh:
            floor = running  # deferred energy would come back above the target: hold
    fee = min(max(fee, floor), running + params.max_rise_ct_per_kwh)
    if not math.isfinite(fee):
        fee = running
    return limits.clamp(min(max(fee, low), high))
