"""Import/export peak tiers: the 2020 challenge's "Aziiz" rule, with a true moving average.

Each slot, ``x`` = the mean over the last ``look_back_slots`` closed slots of a per-slot load
measure [kWh per slot], and the next slot's fee is the fee of the tier ``x`` falls in:

* ``measure="max"``: ``max(import, export)`` of each slot, the peak flow in either direction;
* ``measure="net"``: ``|import - export|`` of each slot, the net exchange with the parent market.
  The SDK script took ``|mean(import - export)|`` instead; the two differ only when the balance
  changes sign inside the window, where the SDK lets an import slot cancel an export slot.

A slot counts when both its import and export are known (NaN slots are skipped); with no such slot
in the window (an empty history, a gap in the stats) the fee is the lowest tier's.

Two readings of the tier table ``thresholds = [10, 15, 20, 25, 30, 50]`` kWh per slot,
``fees = [0.9, 2.1, 3, 3.9, 6, 30]`` ct/kWh:

* ``rule="upper_bound"``, what the SDK script does: the fee of the first tier whose threshold is
  at or above ``x`` (``x <= 10`` -> 0.9, ``10 < x <= 15`` -> 2.1, ...), and
  ``above_all_ct_per_kwh`` (2000 in the script) above the last threshold;
* ``rule="lower_bound"`` (default), the docs' reading, a threshold is where its tier starts: the
  fee of the last tier whose threshold is at or below ``x`` (``20 <= x < 25`` -> 3). Below the
  first threshold the first tier's fee applies (a low load pays the lowest fee, never nothing),
  and the last tier is open-ended, so ``above_all_ct_per_kwh`` is not used.

The SDK script's bug is not copied: it appended the same dict to its history every slot, so its
"moving average" was the last slot's value (balances 40, 0, 0, 0 gave 30, 0.9, 0.9, 0.9 ct/kWh
where a 4-slot mean gives 30, 3, 2.1, 0.9).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.tariffs.base import FeeLimits, MarketHistory, SlotInfo

PRESET_FILE = Path(__file__).with_name("presets") / "challenge_2020_peak_tiers.json"

Measure = Literal["max", "net"]
Rule = Literal["upper_bound", "lower_bound"]


class PeakTierParams(BaseModel):
    """The tier table and how the load it is looked up with is measured."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: Literal["peak_tiers"] = "peak_tiers"
    thresholds_kwh_per_slot: list[float] = Field(min_length=1, max_length=100)
    fees_ct_per_kwh: list[float] = Field(min_length=1, max_length=100)
    above_all_ct_per_kwh: float = Field(ge=0)
    look_back_slots: int = Field(4, ge=1, le=96)
    measure: Measure = "max"
    rule: Rule = "lower_bound"
    cap_ct_per_kwh: float | None = Field(None, ge=0)

    @field_validator("thresholds_kwh_per_slot")
    @classmethod
    def _increasing(cls, thresholds: list[float]) -> list[float]:
        if thresholds[0] < 0:
            raise ValueError(f"thresholds must be >= 0 kWh per slot, the first is {thresholds[0]}")
        for i in range(1, len(thresholds)):
            if thresholds[i] <= thresholds[i - 1]:
                raise ValueError(
                    f"thresholds must be strictly increasing: [{i}] = {thresholds[i]} follows "
                    f"[{i - 1}] = {thresholds[i - 1]}"
                )
        return thresholds

    @field_validator("fees_ct_per_kwh")
    @classmethod
    def _not_negative(cls, fees: list[float]) -> list[float]:
        for i, fee in enumerate(fees):
            if fee < 0:
                raise ValueError(f"[{i}] = {fee} ct/kWh is negative; a fee must be >= 0")
        return fees

    @model_validator(mode="after")
    def _one_fee_per_threshold(self) -> PeakTierParams:
        if len(self.fees_ct_per_kwh) != len(self.thresholds_kwh_per_slot):
            raise ValueError(
                f"fees_ct_per_kwh has {len(self.fees_ct_per_kwh)} values but thresholds_kwh_per_slot "
                f"has {len(self.thresholds_kwh_per_slot)}: one fee per threshold"
            )
        return self


def moving_peak_kwh(history: MarketHistory, look_back_slots: int, measure: Measure) -> float | None:
    """Mean of the per-slot ``measure`` over the last ``look_back_slots`` closed slots [kWh per slot].

    ``None`` when no slot of the window has both import and export known (or the mean is NaN,
    as for +inf and -inf together).
    """
    recent = history.tail(look_back_slots)
    imports = np.asarray(recent.import_kwh, dtype=float)
    exports = np.asarray(recent.export_kwh, dtype=float)
    with np.errstate(all="ignore"):  # inf - inf and overflowing sums are handled below
        per_slot = np.maximum(imports, exports) if measure == "max" else np.abs(imports - exports)
        if not np.any(~np.isnan(per_slot)):
            return None  # np.nanmean would warn "Mean of empty slice"
        mean = float(np.nanmean(per_slot))
    return None if np.isnan(mean) else mean


def tier_fee(load_kwh: float | None, params: PeakTierParams) -> float:
    """The fee [ct/kWh] of the tier ``load_kwh`` falls in under ``params.rule``, before the cap."""
    fees = params.fees_ct_per_kwh
    if load_kwh is None:
        return fees[0]
    thresholds = np.asarray(params.thresholds_kwh_per_slot)
    if params.rule == "upper_bound":
        i = int(np.searchsorted(thresholds, load_kwh, side="left"))  # first threshold >= load
        return fees[i] if i < len(fees) else params.above_all_ct_per_kwh
    i = int(np.searchsorted(thresholds, load_kwh, side="right")) - 1  # last threshold <= load
    return fees[max(i, 0)]


def next_fee(history: MarketHistory, slot: SlotInfo, params: PeakTierParams, limits: FeeLimits) -> float:
    """The tier fee [ct/kWh] for the moving-average load, capped, inside ``limits``."""
    fee = tier_fee(moving_peak_kwh(history, params.look_back_slots, params.measure), params)
    if params.cap_ct_per_kwh is not None:
        fee = min(fee, params.cap_ct_per_kwh)
    return limits.clamp(fee)


def preset_challenge_2020(
    measure: Measure = "max", rule: Rule = "lower_bound", cap_ct_per_kwh: float | None = None
) -> PeakTierParams:
    """The 2020 challenge's tiers (GSy's ``aziiz.json``, shipped in ``presets/``).

    10/15/20/25/30/50 kWh per slot -> 0.9/2.1/3/3.9/6/30 ct/kWh, 2000 ct/kWh above all (what
    the script sent; the exchange's fee limits clamp it), 4-slot look-back.
    """
    data = json.loads(PRESET_FILE.read_text(encoding="utf-8"))
    return PeakTierParams(
        thresholds_kwh_per_slot=data["thresholds_kwh_per_slot"],
        fees_ct_per_kwh=data["fees_ct_per_kwh"],
        above_all_ct_per_kwh=data["above_all_thresholds_ct_per_kwh"],
        look_back_slots=data["look_back_slots"],
        measure=measure,
        rule=rule,
        cap_ct_per_kwh=cap_ct_per_kwh,
    )
