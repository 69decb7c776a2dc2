"""What every page's callbacks share: the console's data, the logged-in user, a market's page."""

from __future__ import annotations

from collections.abc import Callable

from dash import Dash, Input, Output, no_update
from flask import current_app

from app.console import ids
from app.console.auth import current_console_user
from app.console.data import ConsoleData


def console() -> ConsoleData:
    return current_app.extensions["console"]


def user_role() -> tuple[str | None, str | None]:
    """(name, role) of the signed-in user, as the store has them now; (None, None): nobody."""
    user = current_console_user()
    return (None, None) if user is None else (user.username, user.role)


def is_viewer() -> bool:
    return user_role()[1] != "grid_operator"


def market_path(market_uuid: str) -> str:
    """The address of a market's page (registered as ``/markets/<market_id>``)."""
    return f"/markets/{market_uuid}"


def open_market_on(app: Dash, component_id: str, prop: str, market_of: Callable[[dict], object]) -> None:
    """Register on ``app``: a click on ``component_id`` opens a market's page. ``prop`` holds the
    clicked item's data, ``market_of(data)`` its market's uuid (falsy: no market, nothing opens)."""

    @app.callback(
        Output(ids.LOCATION, "href", allow_duplicate=True),
        Input(component_id, prop),
        prevent_initial_call=True,
    )
    def open_market(data: dict | None) -> object:  # the market's path, or no_update
        market = market_of(data) if data else None
        return market_path(str(market)) if market else no_update
