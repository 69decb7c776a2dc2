"""A click on a market in the overview's grid or on the map opens that market's page."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from dash import Dash, no_update

from app.console import ids
from app.console.pages import grid_map, overview


def opener(page: ModuleType, component_id: str) -> Callable[[dict | None], object]:
    """The page's callback that opens a market's page from ``component_id``, as a plain function."""
    app = Dash(__name__)
    page.register_callbacks(app)
    (callback,) = (
        c["callback"].__wrapped__
        for key, c in app.callback_map.items()
        if key.startswith(f"{ids.LOCATION}.href@") and c["inputs"][0]["id"] == component_id
    )
    return callback


def test_a_managed_node_tapped_on_the_map_opens_its_market_and_an_unmanaged_one_nothing():
    tap = opener(grid_map, ids.MAP)
    assert tap({"id": "u-1", "managed": True}) == "/markets/u-1"
    assert tap({"id": "u-2", "managed": False}) is no_update
    assert tap(None) is no_update


def test_a_cell_clicked_in_the_overview_opens_the_market_of_its_row():
    click = opener(overview, ids.OVERVIEW_GRID)
    assert click({"rowId": "u-1", "colId": "market"}) == "/markets/u-1"
    assert click({"rowId": None}) is no_update
