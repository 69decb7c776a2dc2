"""The header bar: is the console live, which slot runs, and how long the operator has to set fees.

:func:`header_text` turns the state into the strings (tested without a browser);
:func:`header_bar` lays them out with dash-mantine-components. The component must sit inside the
app's ``dmc.MantineProvider``, like every DMC component.

``state`` keys (all optional except ``connected``):

- ``connected`` (bool): the last poll of the exchange succeeded.
- ``finished`` (bool): the exchange has ended its run (a gsy-e simulation's ``finish``): the
  badge says "finished" instead of "live".
- ``stale_since`` (float | None): Unix time [s] of the last good poll when not connected.
- ``reason`` (str | None): why the data is stale (e.g. "exchange unreachable").
- ``running_slot`` (str | None): label "YYYY-MM-DDTHH:mm" of the slot now trading (simulated).
- ``deadline_s`` (float | None): wall-clock seconds left until the running slot closes.
- ``send_s`` (float | None): wall-clock seconds left until the agent sends the queue for
  ``next_slot`` (the send point; a fee queued after it is in force from ``target_slot``).
- ``next_slot`` / ``target_slot`` (str | None): labels of the slot after the running one, and of
  the slot a fee queued now is in force from.
- ``time_zone`` (str | None): the zone of the slot labels (simulated time).
- ``user`` / ``role`` (str | None): who is signed in, and as what ("operator" or "viewer").
- ``alerts`` (dict | None): ``{"firing", "unacked", "pending"}`` counts of open alerts.

Wall-clock times (stale since) are shown in ``tz``, the browser's zone, with the zone's name;
slot times are simulated time in the exchange's zone (``time_zone``), named as well.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import dash_mantine_components as dmc

from app import slots
from app.console.components.formatting import (
    MISSING,
    PALETTE,
    fmt_duration_s,
    fmt_wall_clock,
    is_missing,
    slot_date,
    slot_time,
    slot_when,
)

HEADER_DEADLINE_ID = "header-deadline"  # the browser turns its text at the send point
DEADLINE_WARNING_S = 60.0
"""Below this many seconds [s] before the fee deadline the countdown turns to the warning colour."""


def deadline_texts(state: Mapping) -> dict[str, str] | None:
    """The countdown's two wordings, or ``None`` without a clock: ``open`` ("fees for 13:30 CEST
    close in ", the countdown follows) before the send point and ``closed`` ("fees for 13:30 CEST
    closed; queue now for 13:45 CEST") after it. The browser switches between them at the send
    point on its own clock, in the same instant as the queue buttons."""
    next_slot = state.get("next_slot")
    if not next_slot:
        return None
    running, zone = state.get("running_slot"), state.get("time_zone")
    closed = f"fees for {slot_when(next_slot, zone, running)} closed"
    later = state.get("target_slot")
    if later and later != next_slot:
        closed += f"; queue now for {slot_when(later, zone, running)}"
    elif running and state.get("slot_length_min"):
        after = slots.shift(next_slot, 1, int(state["slot_length_min"]))
        closed += f"; queue now for {slot_when(after, zone, running)}"
    return {"open": f"fees for {slot_when(next_slot, zone, running)} close in ", "closed": closed}


def header_text(state: Mapping, tz: dt.tzinfo | None = None) -> dict[str, str]:
    """The header's strings: ``connection``, ``slot``, ``date``, ``deadline``, ``user``, ``alerts``.

    ``tz`` is the zone for "exchange stale since HH:MM:SS CET" (the browser's; UTC when ``None``);
    the slot times are simulated time in the exchange's zone.
    """
    if state.get("connected"):
        connection = "finished" if state.get("finished") else "live"
    else:
        since = state.get("stale_since")
        connection = (
            "exchange stale" if is_missing(since) else f"exchange stale since {fmt_wall_clock(since, tz)}"
        )
        if state.get("reason"):
            connection += f" ({state['reason']})"

    running, zone = state.get("running_slot"), state.get("time_zone")
    send_s = state.get("send_s", state.get("deadline_s"))
    texts = deadline_texts(state)
    if texts is None:
        deadline = f"fee deadline {MISSING}"
    elif is_missing(send_s):
        deadline = texts["open"] + MISSING
    elif send_s <= 0:
        deadline = texts["closed"]
    else:
        deadline = texts["open"] + fmt_duration_s(send_s)

    user, role = state.get("user"), state.get("role")
    who = "not signed in" if not user else (f"{user} ({role})" if role else str(user))
    date = slot_date(running)
    return {
        "connection": connection,
        "slot": f"slot {slot_time(running)}",
        "date": f"simulated date {date}" + (f" ({zone})" if zone and running else ""),
        "deadline": deadline,
        "user": who,
        "alerts": alerts_text(state.get("alerts")),
    }


def alerts_text(counts: Mapping | None) -> str:
    """ "2 alerts (1 new)" / "1 pending" / "no alerts" from the open alerts' counts."""
    counts = counts or {}
    firing, unacked, pending = (int(counts.get(k) or 0) for k in ("firing", "unacked", "pending"))
    if firing:
        text = f"{firing} alert{'s' if firing != 1 else ''}"
        return text + (f" ({unacked} new)" if unacked and unacked != firing else "")
    if pending:
        return f"{pending} pending"
    return "no alerts"


def alerts_colour(counts: Mapping | None) -> str:
    """Red while a firing alert is not acknowledged, orange when all are (or only pending), green
    with none."""
    counts = counts or {}
    if counts.get("unacked"):
        return PALETTE["over_limit"]
    if counts.get("firing") or counts.get("pending"):
        return PALETTE["warning"]
    return PALETTE["live"]


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
                style={"textTransform": "none", "flexShrink": 0},  # the texts wrap, the badges do not
            ),
            dmc.Anchor(
                dmc.Badge(
                    text["alerts"],
                    color=alerts_colour(state.get("alerts")),
                    variant="filled",
                    size="lg",
                    style={"textTransform": "none", "cursor": "pointer", "flexShrink": 0},
                ),
                href="/alerts",
                id="header-alerts",
                underline="never",
                style={"flexShrink": 0},
            ),
            dmc.Text(text["slot"], fw=600, style={"whiteSpace": "nowrap", "flexShrink": 0}),
            dmc.Text(text["date"], c="dimmed", size="sm"),
            dmc.Text(text["deadline"], id=HEADER_DEADLINE_ID, c=_deadline_colour(state), size="sm", fw=500),
            dmc.Text(text["user"], c="dimmed", size="sm", ml="auto"),
        ],
        gap="md",
        align="center",
        wrap="nowrap",
    )
