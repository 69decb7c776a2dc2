"""The fee control service: a market's fee set by hand or by a tariff model and queued for the
agent's next batch — one set of steps for the market page, What-if's "apply" and the agent alike.

The console checks who may do it (a viewer may not; an operator only for the markets granted);
this module stores the setting and queues the fee in the operator store. The agent flushes the
queue as one ``grid_fees`` batch at the running slot's send point (:mod:`app.operator.timing`), so
a fee queued while slot N runs is in force from N+1 (from N+2 once N's send point has passed).

A model's fee is computed here the same way for all three: from the market's last
``HISTORY_FOR_MODELS`` closed slots, for the slot the queued fee will be in force from.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from app import slots
from app.exchange.fees import Fee, FeeRefused, validate_fee
from app.operator.store import OperatorStore
from app.tariffs.base import HISTORY_FOR_MODELS, FeeLimits, MarketHistory, SlotInfo
from app.tariffs.registry import FeeModel, compute_fee, describe


def target_slot(start: dt.datetime, slot_length_min: int) -> SlotInfo:
    """The ``SlotInfo`` of the slot starting at ``start`` (the slot a fee queued now reaches)."""
    return SlotInfo(slots.number(start, slot_length_min), start, slot_length_min)


def model_fee_ct_per_kwh(
    ops: OperatorStore, market_uuid: str, model: FeeModel, slot: SlotInfo, limits: FeeLimits
) -> float:
    """The fee [ct/kWh] ``model`` sets for ``slot`` from the market's stored history."""
    history = MarketHistory.from_rows(ops.history(market_uuid, last=HISTORY_FOR_MODELS), slot.slot_length_min)
    return compute_fee(model, history, slot, limits)


def manual_fee(value: object, limits: Mapping[str, float]) -> Fee:
    """A fee typed into the console, checked once (the exchange's ``validate_fee`` against the
    exchange's ``limits``); ``ValueError`` with the message the form shows."""
    if value in (None, ""):
        raise ValueError("enter a fee in ct/kWh")
    try:
        return validate_fee(value, limits["min_ct_per_kwh"], limits["max_ct_per_kwh"])
    except FeeRefused as exc:
        raise ValueError(exc.message) from None


def queue_manual(
    ops: OperatorStore, market: Mapping, fee_ct_per_kwh: Fee, user: str, running_slot: str | None
) -> int:
    """Store a manual fee (checked by ``manual_fee``) as the market's setting and queue it; the
    command's id."""
    ops.set_manual(market["uuid"], fee_ct_per_kwh, user)
    return ops.queue(market["uuid"], market["name"], fee_ct_per_kwh, f"manual:{user}", user, running_slot)


def queue_model(
    ops: OperatorStore,
    market: Mapping,
    model: FeeModel,
    fee_ct_per_kwh: float,
    user: str,
    running_slot: str | None,
    source: str | None = None,
) -> int:
    """Store ``model`` as the market's setting (the agent then sets a fee every slot) and queue its
    first fee; the command's id. ``source`` names who chose it (default ``model:<describe>``)."""
    ops.set_model(market["uuid"], model.model_dump(mode="json", by_alias=True), user)
    return ops.queue(
        market["uuid"],
        market["name"],
        fee_ct_per_kwh,
        source or f"model:{describe(model)}",
        user,
        running_slot,
    )


def queue_model_fee(
    ops: OperatorStore, market: Mapping, model: FeeModel, slot: SlotInfo, limits: FeeLimits, running_slot: str
) -> int:
    """The agent's step each slot for a market run by ``model``: compute the fee for ``slot`` and
    queue it (the setting is already stored); the command's id."""
    fee = model_fee_ct_per_kwh(ops, market["uuid"], model, slot, limits)
    return ops.queue(market["uuid"], market["name"], fee, f"model:{describe(model)}", "agent", running_slot)
