"""The header on every page: connection, alerts, running slot, fee deadline, user; the send
point; and the browser's own watch on the connection.

The server renders the header every ``TICK`` (2 s). Between two ticks the browser turns, on its own
clock and in the same instant, the header's countdown ("fees for 12:15 CEST close in 0:02" →
"fees for 12:15 CEST closed; queue now for 12:30 CEST") and the label of every queue button on the
page ("Queue for 12:15 CEST" → "Queue for 12:30 CEST") at the send point, so what the operator
reads before a click is what the click does (:mod:`app.operator.timing`).

The header is rebuilt by a server callback on every tick; when the server stops answering, that
callback cannot say so. So the browser watches: each answer of the header's callback is stamped
with the browser's clock (``SERVER_OK_AT``), ``assets/connection.js`` notes a request to the server
that failed, and a clientside callback on a one-second interval turns the header into "offline
since HH:MM:SS" (the browser's zone) when the last poll failed or none was answered for
``OFFLINE_AFTER_TICKS`` polls, disables the controls that would send something with the reason,
and lets go by itself at the next answer. "Exchange stale" comes from the server (it still
answers, the exchange does not) and disables them as well.
"""

from __future__ import annotations

from dash import ALL, Dash, Input, Output, State

from app import slots
from app.console import ids
from app.console.components.fee_status import queue_button_text
from app.console.components.formatting import browser_zone
from app.console.components.header import HEADER_DEADLINE_ID, deadline_texts, header_bar
from app.console.pages.common import console, is_viewer, user_role
from app.operator.alerts import RULES

WATCH = "connection-watch"
WATCH_MS = 1000
TICK_MS = 2000
OFFLINE_AFTER_TICKS = 2
"""The browser says "offline" when the server answered none of the last this many polls."""


def header_state() -> dict:
    data = console()
    state = dict(data.clock_state())
    user, role = user_role()
    state.update(user=user, role=role)
    try:
        counts = data.alert_counts()
    except Exception:  # an old store without the alerts table: the header still shows the rest
        counts = {}
    return with_exchange_alert(state, counts)


def with_exchange_alert(state: dict, counts: dict) -> dict:
    """The header state with the alert counts; a firing alert about the exchange (the agent found
    it unreachable, or no new slot for two slot lengths) makes it stale, with the rule as reason,
    even while the console's cached clock reading still looks live."""
    exchange = counts.get("exchange")
    state = {**state, "alerts": {k: v for k, v in counts.items() if k != "exchange"} or None}
    if exchange and state.get("connected"):
        reason = RULES[exchange["rule"]].title.lower() if exchange["rule"] in RULES else exchange["rule"]
        state.update(connected=False, stale_since=exchange["started_at"], reason=reason)
    return state


def fee_timing(state: dict) -> dict:
    """What the browser needs to turn the countdown and the queue buttons at the send point.

    ``send_s`` [s] is the time left to the send point as the server reads it (``None``: no clock);
    ``before``/``after`` are the queue buttons' labels before it (N+1) and after it (N+2);
    ``deadline_open``/``deadline_closed`` the header's countdown wordings (see
    :func:`app.console.components.header.deadline_texts`).
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


def server_ok(state: dict) -> dict:
    """What the browser's watch needs from the server's answer: is the exchange stale, and why."""
    stale = not state.get("connected")
    return {
        "exchange_stale": stale,
        "reason": (state.get("reason") or "exchange not answering") if stale else None,
        "viewer": is_viewer(),
    }


def register_callbacks(app: Dash) -> None:
    """This page's callbacks, on ``app`` (each Dash app of the process gets its own)."""

    @app.callback(
        Output(ids.HEADER, "children"),
        Output(ids.FEE_TIMING, "data"),
        Output(ids.SERVER_OK, "data"),
        Input(ids.TICK, "n_intervals"),
        State(ids.BROWSER_TZ, "data"),
    )
    def update_header(_n, tz_name):
        state = header_state()
        return header_bar(state, browser_zone(tz_name)), fee_timing(state), server_ok(state)

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
    # ... the label of the slot a click reaches, changed only when it changes (at the send point and
    # when a slot closes): what the previews follow ...
    app.clientside_callback(
        """
        function(_n, timing, old) {
            const nc = window.dash_clientside.no_update;
            if (!timing) { return nc; }
            const passed = !timing.send_at_ms || Date.now() >= timing.send_at_ms;
            const label = passed ? timing.after : timing.before;
            return label === old ? nc : label;
        }
        """,
        Output(ids.FEE_TARGET, "data"),
        Input(ids.FEE_TIMING_TICK, "n_intervals"),
        State(ids.FEE_TIMING_LOCAL, "data"),
        State(ids.FEE_TARGET, "data"),
    )
    # ... and the header's countdown, formatted like app.console.components.formatting.fmt_duration_s
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
    app.clientside_callback(
        "function(_p) { return Intl.DateTimeFormat().resolvedOptions().timeZone || null; }",
        Output(ids.BROWSER_TZ, "data"),
        Input(ids.LOCATION, "pathname"),
    )
    app.clientside_callback(
        "function(ok) { return ok ? Date.now() : window.dash_clientside.no_update; }",
        Output(ids.SERVER_OK_AT, "data"),
        Input(ids.SERVER_OK, "data"),
    )
    app.clientside_callback(
        f"""
        function(_n, okAt, ok, conn) {{
            const nc = window.dash_clientside.no_update;
            const now = Date.now();
            const net = window.gridFeeNet || {{}};
            const last = Math.max(okAt || 0, net.okAt || 0) || performance.timeOrigin;
            const failed = !!net.failedAt && net.failedAt > last;
            const offline = failed || now - last > {OFFLINE_AFTER_TICKS * TICK_MS + 500};
            const stale = !offline && !!(ok && ok.exchange_stale);
            const clock = (ms) => new Date(ms).toLocaleTimeString('en-GB', {{
                hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short'}});
            let reason = null, text = '';
            if (offline) {{
                reason = 'the console server is not answering';
                text = 'offline since ' + clock(last) + ' (wall-clock): ' + reason
                    + '; fee controls disabled until it answers again';
            }} else if (stale) {{
                reason = 'the exchange is stale (' + ok.reason + ')';
            }}
            const next = {{offline: offline, stale: stale, since_ms: offline ? last : null,
                           reason: reason, viewer: ok ? !!ok.viewer : null}};
            const same = conn && conn.offline === next.offline && conn.stale === next.stale
                && conn.reason === next.reason && conn.viewer === next.viewer;
            return [
                same ? nc : next,
                offline ? text : '',
                offline ? {{display: 'flex', alignItems: 'center', flex: 1, minWidth: 0,
                            background: '#C92A2A', color: 'white', fontWeight: 600,
                            padding: '4px 10px', borderRadius: '6px', fontSize: '14px'}}
                        : {{display: 'none'}},
                offline ? {{display: 'none'}} : {{flex: 1, minWidth: 0}},
            ];
        }}
        """,
        Output(ids.CONNECTION, "data"),
        Output(ids.OFFLINE_BANNER, "children"),
        Output(ids.OFFLINE_BANNER, "style"),
        Output(ids.HEADER, "style"),
        Input(WATCH, "n_intervals"),
        Input(ids.SERVER_OK_AT, "data"),
        State(ids.SERVER_OK, "data"),
        State(ids.CONNECTION, "data"),
    )
    # every control on the page that would send something: disabled, with the reason beside it
    app.clientside_callback(
        """
        function(conn, buttons, saves, acks) {
            const off = !!conn && (conn.offline || conn.stale);
            const why = off ? 'Not sent while ' + conn.reason + '.' : '';
            const disabled = off || !conn || conn.viewer !== false;
            return [
                buttons.map(() => disabled),
                buttons.map(() => why),
                saves.map(() => disabled),
                acks.map(() => disabled),
            ];
        }
        """,
        Output({"type": "fee-queue", "market": ALL}, "disabled"),
        Output({"type": "fee-offline", "market": ALL}, "children"),
        Output({"type": "limit-save", "market": ALL}, "disabled"),
        Output({"type": "alert-ack", "alert": ALL}, "disabled"),
        Input(ids.CONNECTION, "data"),
        State({"type": "fee-queue", "market": ALL}, "id"),
        State({"type": "limit-save", "market": ALL}, "id"),
        State({"type": "alert-ack", "alert": ALL}, "id"),
    )
