"""What became of a fee command, in the operator's words, with the exact slot.

One wording for the market page's message and the fee commands page: "queued: in force from
12:15 CEST" → "sent, waiting for the exchange" → "in force from 12:15 CEST" (the slot the exchange
answered) or "refused: <the exchange's reason>". A queued command's slot is the one the clock
says a fee queued now reaches (``state["target_slot"]``: N+1 before the send point, N+2 after
it); once sent, the exchange's own answer (``applies_from_slot``) is shown, never a guess.

``command``: a row of the operator store's ``fee_commands`` (``status``, ``applies_from_slot``,
``reason``); ``state``: the console's clock state (``running_slot``, ``target_slot``,
``time_zone``).
"""

from __future__ import annotations

from collections.abc import Mapping

from app.console.components.formatting import slot_when

STATUS_COLOURS = {
    "queued": "blue",
    "sending": "blue",
    "applied": "green",
    "refused": "red",
    "superseded": "gray",
}


def queued_text(state: Mapping) -> str:
    """Where a command queued now goes: "in force from 12:15 CEST", or why it is not known."""
    target = state.get("target_slot")
    if not target:
        return "sent with the next batch once the exchange answers again"
    return f"in force from {slot_when(target, state.get('time_zone'), state.get('running_slot'))}"


def command_outcome(command: Mapping, state: Mapping) -> tuple[str, str]:
    """``(text, colour)``: the command's status in words, and its Mantine colour."""
    status = command.get("status")
    tz, running = state.get("time_zone"), state.get("running_slot")
    if status == "queued":
        text = f"queued: {queued_text(state)}"
    elif status == "sending":
        text = "sent, waiting for the exchange's answer"
    elif status == "applied":
        applies = command.get("applies_from_slot")
        text = f"in force from {slot_when(applies, tz, running)}" if applies else "applied"
    elif status == "refused":
        text = f"refused: {command.get('reason') or 'no reason given'}"
    elif status == "superseded":
        text = "replaced by a later change before it was sent"
    else:
        text = str(status)
    return text, STATUS_COLOURS.get(str(status), "gray")


def queue_button_text(state: Mapping) -> str:
    """The queue button's label: the slot a click now reaches ("Queue for 12:15 CEST")."""
    target = state.get("target_slot")
    if not target:
        return "Queue for the next batch"
    return f"Queue for {slot_when(target, state.get('time_zone'), state.get('running_slot'))}"
