"""Grid map (``/map``): the market tree coloured by each market's load against its limit and its
alerts; hover (or focus in the list) shows the fees, a click (or Enter in the list) opens the market.

The map redraws nothing when a slot closes: the nodes keep their positions and only their data
and classes change, by a ``Patch`` of the elements that changed. The list beside the map holds
the same markets as links, for the keyboard and for screen readers (a canvas has neither).
"""

from __future__ import annotations

import dash_mantine_components as dmc
from dash import Dash, Input, Output, Patch, State, dcc, html, no_update

from app.console import ids
from app.console.components.formatting import PALETTE
from app.console.components.grid_map import grid_map, map_elements
from app.console.components.page import heading
from app.console.pages.common import console, market_path, open_market_on

LIST_LIMIT = 60  # markets in the keyboard list (the managed ones first)


def map_data() -> tuple[list[dict], str | None]:
    """The elements of the whole grid now, and the slot they show."""
    data = console()
    snapshot = data.overview()
    latest = {r["market_uuid"]: r for r in snapshot["latest"]}
    elements = map_elements(data.tree(), latest, data.limits(), data.alerts_by_market(), data.queued())
    return elements, snapshot["slot"]


def market_list(elements: list[dict]) -> list:
    """The managed markets as links with their state in words (keyboard and screen readers)."""
    items = []
    for e in elements:
        d = e.get("data", {})
        if "source" in d or not d.get("managed"):
            continue
        state = "over its limit" if d.get("over") else "no limit" if d.get("load_pct") is None else "within"
        if d.get("load_pct") is not None:
            state += f" ({d['load_pct']:.0f} %)"
        if d.get("alerts"):
            state += f", {d['alerts']} alert{'s' if d['alerts'] != 1 else ''}"
        items.append(
            html.Li(
                [
                    dcc.Link(d["name"], href=market_path(d["id"]), title=d.get("tip", "")),
                    html.Span(f" – {state}", style={"color": "#495057"}),
                ]
            )
        )
        if len(items) >= LIST_LIMIT:
            break
    return items


def info_panel(node: dict | None) -> list:
    if not node:
        return [dmc.Text("Point at a market to see its fees; click it to open it.", size="sm", c="dimmed")]
    return [
        dmc.Text(node.get("name"), fw=600),
        *[dmc.Text(part, size="sm") for part in str(node.get("tip", "")).split("; ")],
    ]


MAP_SUBTITLE = "grid-map-subtitle"


def subtitle(slot: str | None) -> str:
    when = slot.replace("T", " ") if slot else "none yet: the map fills when the first slot closes"
    return f"load of each connection in the last closed slot ({when}, simulated time) against its limits"


LEGEND = [
    (PALETTE["live"], "under 80 % of its limit"),
    (PALETTE["export"], "80-100 % of its limit"),
    (PALETTE["over_limit"], "over its limit (diamond)"),
    (PALETTE["muted"], "no limit or no data"),
]


def layout(**_query) -> dmc.Grid:
    elements, slot = map_data()
    legend = dmc.Group(
        [
            dmc.Group(
                [html.Span(style={"width": 12, "height": 12, "background": c, "display": "inline-block"}), t],
                gap=4,
            )
            for c, t in LEGEND
        ]
        + [dmc.Text("thick border: alert firing; dashed: pending", size="sm")],
        gap="md",
        style={"fontSize": "14px"},
    )
    return dmc.Grid(
        [
            dmc.GridCol(
                [
                    heading("Grid map", subtitle(slot), note_id=MAP_SUBTITLE),
                    legend,
                    html.Div(
                        grid_map(elements, ids.MAP, height_px=440),  # whole at 1366x768
                        role="img",
                        **{"aria-label": "Grid map; the list of markets beside it holds the same"},
                    ),
                    dcc.Store(
                        id=ids.MAP_SLOT, data={"slot": slot, "ids": [e["data"]["id"] for e in elements]}
                    ),
                ],
                span=9,
            ),
            dmc.GridCol(
                [
                    dmc.Paper(info_panel(None), id=ids.MAP_INFO, p="sm", withBorder=True, mb="sm"),
                    html.Nav(
                        [
                            dmc.Text("Markets", fw=600, size="sm"),
                            html.Ul(market_list(elements), id=ids.MAP_LIST, style={"paddingLeft": 18}),
                        ],
                        **{"aria-label": "Markets of the map"},
                    ),
                ],
                span=3,
            ),
        ]
    )


def node_patch(old_ids: list[str], elements: list[dict]):
    """A ``Patch`` setting each element's data and classes in place, or the new list when the
    grid changed (other markets)."""
    if [e["data"]["id"] for e in elements] != old_ids:
        return elements
    patch = Patch()
    for k, e in enumerate(elements):
        if "source" in e["data"]:
            continue
        patch[k]["data"] = e["data"]
        patch[k]["classes"] = e["classes"]
    return patch


def register_callbacks(app: Dash) -> None:
    """This page's callbacks, on ``app`` (each Dash app of the process gets its own)."""

    @app.callback(
        Output(ids.MAP, "elements"),
        Output(ids.MAP_SLOT, "data"),
        Output(ids.MAP_LIST, "children"),
        Output(MAP_SUBTITLE, "children"),
        Input(ids.TICK, "n_intervals"),
        State(ids.MAP_SLOT, "data"),
        prevent_initial_call=True,
    )
    def refresh_map(_n, shown):
        elements, slot = map_data()
        fingerprint = [e["data"].get("tip") for e in elements]
        if shown and shown.get("slot") == slot and shown.get("tips") == fingerprint:
            return no_update, no_update, no_update, no_update
        out = node_patch((shown or {}).get("ids") or [], elements)
        state = {"slot": slot, "ids": [e["data"]["id"] for e in elements], "tips": fingerprint}
        return out, state, market_list(elements), subtitle(slot)

    @app.callback(
        Output(ids.MAP_INFO, "children"),
        Input(ids.MAP, "mouseoverNodeData"),
        prevent_initial_call=True,
    )
    def show_node(node):
        return info_panel(node)

    open_market_on(app, ids.MAP, "tapNodeData", lambda node: node.get("managed") and node["id"])
