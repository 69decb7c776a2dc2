"""The header bar: is the console live, which slot runs, and how long the operator has to set fees.

:func:`header_text` turns the state into the strings (tested without a browser);
:func:`header_bar` lays them out with dash-mantine-components. The component must sit inside the
app's ``dmc.MantineProvider``, like every DMC component.

``state`` keys (all optional except ``connected``):

- ``connected`` (bool): the last poll of the exchange succeeded.
- ``stale_since`` (float | None): Unix time [s] of the last good poll when not connected.
- ``reason`` (str | None): why the data is stale (e.g. "exchange unreachable").
- ``running_slot`` (str | None): label "YYYY-MM-DDTHH:mm" of the slot now trading (simulated).
- ``deadline_s`` (float | None): wall-clock seconds left to send fees for ``next_slot``.
- ``next_slot`` (str | None): label of the slot the next fee command applies to.
- ``user`` / ``role`` (str | None): who is signed in, and as what ("operator" or "viewer").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import dash_mantine_components as dmc

from components.formatting import (
    MISSING,
    PALETTE,
    fmt_clock,
    fmt_duration_s,
    is_missing,
    slot_date,
    slot_time,
)

DEADLINE_WARNING_S = 60.0
"""Below this many seconds [s] before the fee deadline the countdown turns to the warning colour."""


def header_text(state: Mapping, tz: dt.tzinfo | None = None) -> dict[str, str]:
    """The header's strings: ``connection``, ``slot``, ``date``, ``deadline``, ``user``.

    ``tz`` is the zone for "stale since HH:MM" (the server's local time when ``None``; the slot
    times are simulated time and shown as labelled).
    """
    if state.get("connected"):
        connection = "live"
    else:
        since = state.get("stale_since")
        connection = "stale" if is_missing(since) else f"stale since {fmt_clock(since, tz)}"
        if state.get("reason"):
            connection += f" ({state['reason']})"

    running = state.get("running_slot")
    next_slot = state.get("next_slot")
    deadline_s = state.get("deadline_s")
    if not next_slot:
        deadline = f"fee deadline {MISSING}"
    elif is_missing(deadline_s):
        deadline = f"fees for {slot_time(next_slot)} close in {MISSING}"
    elif deadline_s <= 0:
        deadline = f"fees for {slot_time(next_slot)} closed"
    else:
        deadline = f"fees for {slot_time(next_slot)} close in {fmt_duration_s(deadline_s)}"

    user, role = state.get("user"), state.get("role")
    who = "not signed in" if not user else (f"{user} ({role})" if role else str(user))
    return {
        "connection": connection,
        "slot": f"slot {slot_time(running)}",
        "date": slot_date(running),
        "deadline": deadline,
        "user": who,
    }


def _deadline_colour(state: Mapping) -> str:
    deadline_s = state.get("deadline_s")
    if state.get("next_slot") and not is_missing(deadline_s) and deadline_s < DEADLINE_WARNING_S:
        return PALETTE["warning"]
    return "dimmed"


def header_bar(state: Mapping, tz: dt.tzinfo | None = None) -> dmc.Group:
    """A ``dmc.Group``: connection badge (green "live" / red "stale since HH:MM (reason)"), running
    slot, simulated date, fee-deadline countdown (orange in the last minute) and user with role.

    Rebuild it from a callback on each tick (it is small); the texts come from :func:`header_text`.
    """
    text = header_text(state, tz)
    live = bool(state.get("connected"))
    return dmc.Group(
        [
            dmc.Badge(
                text["connection"],
                color=PALETTE["live"] if live else PALETTE["over_limit"],
                variant="filled",
                size="lg",
                style={"textTransform": "none"},
            ),
            dmc.Text(text["slot"], fw=600),
            dmc.Text(f"simulated date {text['date']}", c="dimmed", size="sm"),
            dmc.Text(text["deadline"], c=_deadline_colour(state), size="sm", fw=500),
            dmc.Text(text["user"], c="dimmed", size="sm", ml="auto"),
        ],
        gap="md",
        align="center",
        wrap="nowrap",
    )
