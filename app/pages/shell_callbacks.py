"""The header on every page: connection, running slot, fee deadline, user; and the send point.

The server renders the header every ``TICK`` (2 s). Between two ticks the browser turns, on its own
clock and in the same instant, the header's countdown ("fees for 12:15 CEST close in 0:02" →
"fees for 12:15 CEST closed; queue now for 12:30 CEST") and the label of every queue button on the
page ("Queue for 12:15 CEST" → "Queue for 12:30 CEST") at the send point, so what the operator
reads before a click is what the click does (:mod:`app.operator.timing`).
"""

from __future__ import annotations

from dash import ALL, Input, Output, State

from app import ids, slots
from app.pages.common import console, user_role
from components.fee_status import queue_button_text
from components.header import HEADER_DEADLINE_ID, deadline_texts, header_bar


def header_state() -> dict:
    state = dict(console().clock_state())
    user, role = user_role()
    state.update(user=user, role=role)
    return state


def fee_timing(state: dict) -> dict:
    """What the browser needs to turn the countdown and the queue buttons at the send point.

    ``send_s`` [s] is the time left to the send point as the server reads it (``None``: no clock);
    ``before``/``after`` are the queue buttons' labels before it (N+1) and after it (N+2);
    ``deadline_open``/``deadline_closed`` the header's countdown wordings (see
    :func:`components.header.deadline_texts`).
    """
    running, send_s = state.get("running_slot"), state.get("send_s")
    if not running or send_s is None:
        label = queue_button_text({})
        return {"send_s": None, "before": label, "after": label}
    length = int(state.get("slot_length_min") or 15)
    before = {**state, "target_slot": slots.shift(running, 1, length)}
    after = {**state, "target_slot": slots.shift(running, 2, length)}
    texts = deadline_texts(after) or {}
    return {
        "send_s": send_s,
        "before": queue_button_text(before),
        "after": queue_button_text(after),
        "deadline_open": texts.get("open"),
        "deadline_closed": texts.get("closed"),
    }


def register_callbacks(app) -> None:  # noqa: ANN001
    """This page's callbacks, on ``app`` (each Dash app of the process gets its own)."""

    @app.callback(
        Output(ids.HEADER, "children"),
        Output(ids.FEE_TIMING, "data"),
        Input(ids.TICK, "n_intervals"),
    )
    def update_header(_n):
        state = header_state()
        return header_bar(state), fee_timing(state)

    # the send point on the browser's clock ...
    app.clientside_callback(
        """
        function(timing) {
            if (!timing || timing.send_s === null || timing.send_s === undefined) { return timing; }
            return Object.assign({}, timing, {send_at_ms: Date.now() + 1000 * timing.send_s});
        }
        """,
        Output(ids.FEE_TIMING_LOCAL, "data"),
        Input(ids.FEE_TIMING, "data"),
    )
    # ... then every FEE_TIMING_TICK_MS the label of every queue button on the page ...
    app.clientside_callback(
        """
        function(_n, timing, labels) {
            const nc = window.dash_clientside.no_update;
            if (!timing) { return labels.map(() => nc); }
            const passed = !timing.send_at_ms || Date.now() >= timing.send_at_ms;
            const label = passed ? timing.after : timing.before;
            return labels.map((old) => (old === label ? nc : label));
        }
        """,
        Output({"type": "fee-queue", "market": ALL}, "children"),
        Input(ids.FEE_TIMING_TICK, "n_intervals"),
        State(ids.FEE_TIMING_LOCAL, "data"),
        State({"type": "fee-queue", "market": ALL}, "children"),
    )
    # ... and the header's countdown, formatted like components.formatting.fmt_duration_s
    app.clientside_callback(
        """
        function(_n, timing, old) {
            const nc = window.dash_clientside.no_update;
            if (!timing || !timing.send_at_ms || !timing.deadline_open) { return nc; }
            const left = (timing.send_at_ms - Date.now()) / 1000;
            let text = timing.deadline_closed;
            if (left > 0) {
                const t = Math.ceil(left), h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60);
                const pad = (x) => String(x).padStart(2, "0");
                text = timing.deadline_open + (h ? `${h}:${pad(m)}:${pad(t % 60)}` : `${m}:${pad(t % 60)}`);
            }
            return text === old ? nc : text;
        }
        """,
        Output(HEADER_DEADLINE_ID, "children"),
        Input(ids.FEE_TIMING_TICK, "n_intervals"),
        State(ids.FEE_TIMING_LOCAL, "data"),
        State(HEADER_DEADLINE_ID, "children"),
    )
