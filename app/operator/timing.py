"""When the console's fees reach the exchange, and which slot they are in force from.

The exchange's rule (DESIGN §1): a fee accepted while slot N runs applies from slot N+1. The
operator agent sends the console's queue (manual changes and the models' fees alike) as one
``grid_fees`` batch per slot, at the running slot's **send point**: its fee deadline (the end of
the slot, on the exchange's clock) less a lead time, so that the batch is accepted while N still
runs. With 15-minute slots, a 30 s lead, and the models fed at the end of each slot:

==================  ==============================================  ==========================
when                what happens                                    in force from
==================  ==============================================  ==========================
12:00 closes        the agent gets 12:00's stats; each model        —
                    computes its fee and queues it
12:15 runs          the operator queues 4 ct/kWh for a community    —
                    (then 5: the later change replaces the first)
12:29:30            send point of 12:15: one batch with every       12:30 (the slot after
                    queued fee (the models' and the 5 ct/kWh)        the one running)
12:29:45            the operator queues 6 ct/kWh                    12:45 (sent at 12:44:30)
==================  ==============================================  ==========================

So "queued for the next slot" means the slot after the one running when the operator clicked,
as long as the click comes before the send point; after it, the slot after that, and the
console says which before the click. Everything here is a pure function of the exchange's clock
reading; the agent and the console both use it, so they agree on the send point.
"""

from __future__ import annotations

from app import slots

SEND_LEAD_SHARE = 0.2
"""The send point is this share of a slot's real length before its end ..."""
SEND_LEAD_MIN_S = 0.3
"""... but at least this many seconds [s] (the batch's round trip on a busy machine) ..."""
SEND_LEAD_MAX_S = 30.0
"""... and at most this many [s]: with 15-minute slots the operator may queue until 14:30 of 15:00."""


def send_lead_s(slot_seconds: float) -> float:
    """How long [s] before the running slot's end the agent sends the queue.

    ``slot_seconds`` is the real length of a slot (0 = fast-forward: no lead, the agent sends at
    every cycle).
    """
    if slot_seconds <= 0:
        return 0.0
    return min(max(SEND_LEAD_SHARE * slot_seconds, SEND_LEAD_MIN_S), SEND_LEAD_MAX_S, slot_seconds)


def send_at(deadline_at: float, slot_seconds: float) -> float:
    """Wall-clock time [s since the epoch] of the running slot's send point.

    ``deadline_at`` is when the exchange closes the running slot (``time.time()`` scale).
    """
    return deadline_at - send_lead_s(slot_seconds)


def target_slot(running_slot: str, slot_length_min: int, seconds_to_send: float) -> str:
    """The slot a fee queued now is in force from.

    ``seconds_to_send`` [s] is the time left until the running slot's send point: positive →
    the next slot (N+1); zero or negative → the queue has gone for this slot, so the slot after
    (N+2).
    """
    return slots.shift(running_slot, 1 if seconds_to_send > 0 else 2, slot_length_min)
