"""Constant grid fee: the same fee in every slot, whatever the market does.

The baseline every other model is compared with, and what the SDK's ``rest_grid_fees.py`` sends
(10 ct/kWh there; GSy's examples use about 1 ct/kWh for a community and 2 ct/kWh for the grid).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.tariffs.base import FeeLimits, MarketHistory, SlotInfo


class ConstantParams(BaseModel):
    """Parameters of the constant fee. ``model`` is the tag that ``registry.FeeModel`` dispatches on."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: Literal["constant"] = "constant"
    fee_ct_per_kwh: float = Field(ge=0, description="The fee in every slot [ct/kWh].")


def next_fee(history: MarketHistory, slot: SlotInfo, params: ConstantParams, limits: FeeLimits) -> float:
    """The fee [ct/kWh] for ``slot``: ``params.fee_ct_per_kwh`` inside ``limits``.

    The history is not read; the limits still apply, since the exchange's limits may be narrower
    than the value an operator typed in.
    """
    return limits.clamp(params.fee_ct_per_kwh)
