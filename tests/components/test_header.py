"""The header bar's strings and its DMC layout."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import dash_mantine_components as dmc
from plotly.io.json import to_json_plotly

from app.console.components.formatting import PALETTE
from app.console.components.header import alerts_colour, alerts_text, header_bar, header_text

STALE_TS = dt.datetime(2026, 6, 22, 13, 5, tzinfo=dt.UTC).timestamp()
LIVE = {
    "connected": True,
    "stale_since": None,
    "reason": None,
    "running_slot": "2026-06-22T13:15",
    "deadline_s": 42.0,
    "next_slot": "2026-06-22T13:30",
    "user": "alice",
    "role": "operator",
}
STALE = LIVE | {"connected": False, "stale_since": STALE_TS, "reason": "exchange unreachable"}


def test_hdr001_live_header_names_slot_simulated_date_deadline_and_user_in_the_exchange_zone():
    assert header_text(LIVE, dt.UTC) == {
        "connection": "live",
        "slot": "slot 13:15",
        "date": "simulated date 2026-06-22",
        "deadline": "fees for 13:30 close in 0:42",
        "user": "alice (operator)",
        "alerts": "no alerts",
    }
    with_zone = header_text(LIVE | {"time_zone": "Europe/Berlin"}, dt.UTC)
    assert with_zone["date"] == "simulated date 2026-06-22 (Europe/Berlin)"
    assert with_zone["deadline"] == "fees for 13:30 CEST close in 0:42"


def test_hdr002_stale_with_time_and_reason():
    text = header_text(STALE, dt.UTC)["connection"]
    assert text == "exchange stale since 13:05:00 UTC (exchange unreachable)"
    berlin = header_text(STALE | {"reason": None}, ZoneInfo("Europe/Berlin"))["connection"]
    assert berlin == "exchange stale since 15:05:00 CEST"  # the browser's zone, named
    none = header_text(STALE | {"stale_since": None}, dt.UTC)["connection"]
    assert none == "exchange stale (exchange unreachable)"


def test_hdr003_deadline_counts_down_says_closed_at_zero_and_dash_when_unknown():
    assert header_text(LIVE | {"deadline_s": 2520})["deadline"] == "fees for 13:30 close in 42:00"
    assert header_text(LIVE | {"deadline_s": 0})["deadline"] == "fees for 13:30 closed"
    assert header_text(LIVE | {"deadline_s": None})["deadline"] == "fees for 13:30 close in –"
    assert header_text(LIVE | {"next_slot": None})["deadline"] == "fee deadline –"


def test_hdr004_nothing_known_yet():
    text = header_text({"connected": False})
    assert text == {
        "connection": "exchange stale",
        "slot": "slot –",
        "date": "simulated date –",
        "deadline": "fee deadline –",
        "user": "not signed in",
        "alerts": "no alerts",
    }
    assert header_text(LIVE | {"role": None})["user"] == "alice"


def _texts(group: dmc.Group) -> list[str]:
    return [getattr(child.children, "children", child.children) for child in group.children]


def test_hdr005_live_bar_shows_a_live_badge_and_warns_under_a_minute_left():
    bar = header_bar(LIVE, dt.UTC)
    assert isinstance(bar, dmc.Group)
    badge = bar.children[0]
    assert isinstance(badge, dmc.Badge)
    assert badge.children == "live" and badge.color == PALETTE["live"]
    assert _texts(bar) == [
        "live",
        "no alerts",
        "slot 13:15",
        "simulated date 2026-06-22",
        "fees for 13:30 close in 0:42",
        "alice (operator)",
    ]
    assert bar.children[4].c == PALETTE["warning"]  # under a minute left
    assert header_bar(LIVE | {"deadline_s": 300}).children[4].c == "dimmed"
    json.loads(to_json_plotly(bar))  # serialisable as a callback output


def test_hdr006_bar_stale_is_red():
    badge = header_bar(STALE, dt.UTC).children[0]
    assert badge.children == "exchange stale since 13:05:00 UTC (exchange unreachable)"
    assert badge.color == PALETTE["over_limit"]


def test_hdr007_alerts_count_and_colour():
    assert alerts_text({"firing": 2, "unacked": 1, "pending": 3}) == "2 alerts (1 new)"
    assert alerts_text({"firing": 1, "unacked": 1}) == "1 alert"
    assert alerts_text({"pending": 3}) == "3 pending"
    assert alerts_colour({"firing": 2, "unacked": 1}) == PALETTE["over_limit"]
    assert alerts_colour({"firing": 2, "unacked": 0}) == PALETTE["warning"]
    assert alerts_colour({}) == PALETTE["live"]
    badge = header_bar(LIVE | {"alerts": {"firing": 1, "unacked": 1}}).children[1].children
    assert badge.children == "1 alert" and badge.color == PALETTE["over_limit"]


def test_hdr008_wall_clock_times_name_their_zone():
    from app.console.components.formatting import browser_zone, fmt_wall_clock, fmt_wall_datetime

    assert fmt_wall_clock(STALE_TS, ZoneInfo("Europe/Berlin")) == "15:05:00 CEST"
    assert fmt_wall_datetime(STALE_TS, None) == "2026-06-22 13:05:00 UTC"
    assert browser_zone("Europe/Berlin") == ZoneInfo("Europe/Berlin")
    assert browser_zone("Not/AZone") == dt.UTC and browser_zone(None) == dt.UTC


def test_hdr009_the_agents_exchange_alert_makes_the_header_stale():
    from app.console.pages.shell_callbacks import with_exchange_alert

    alert = {"rule": "no_new_slot", "started_at": STALE_TS, "market_uuid": ""}
    state = with_exchange_alert(LIVE, {"firing": 1, "unacked": 1, "pending": 0, "exchange": alert})
    assert state["alerts"] == {"firing": 1, "unacked": 1, "pending": 0}
    text = header_text(state, dt.UTC)["connection"]
    assert text == "exchange stale since 13:05:00 UTC (no new slot from the exchange)"
    assert with_exchange_alert(LIVE, {"firing": 0, "exchange": None})["connected"] is True
