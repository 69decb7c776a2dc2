"""The live grid map: the market tree (grid → communities → houses) drawn with dash-cytoscape.

:func:`map_elements` turns the markets, their last slot, their limits, alerts and queued fees into
cytoscape ``elements`` (plain dicts, tested without a browser); :func:`grid_map` lays them out.
Positions are computed here (a tidy top-down tree, ``preset`` layout), so a new slot changes the
nodes' data and classes only and nothing moves; past ``COLLAPSE_OVER`` nodes the houses are left
out (each community says how many it holds), which keeps the default scenario at its four markets
and a 1,000-market grid at a few dozen nodes.

Each node's colour says how full its connection was in the last slot against its limit (the
higher of import and export): green below ``NEAR_PCT`` %, orange from it, red over the limit, grey
without a limit or data; a firing alert adds a thick dark-red border, a pending one a dashed
orange one. The load also stands in the label ("125 %"), so the colour is never the only sign.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dash_cytoscape as cyto

from app.console.components.formatting import PALETTE, fmt_energy, fmt_price
from app.operator.alerts import ALERTING, Limits, flow_load

COLLAPSE_OVER = 24
"""More nodes than this: the houses are left out (collapsed into their community). The map's pane is
~870 px wide at 1366x768 and a leaf takes ``X_STEP`` px: a tree with fifty houses (the default
scenario) was drawn at a quarter of its size, its labels unreadable. The houses are not markets the
operator sets fees for; the communities say how many they hold."""
NEAR_PCT = 80.0
"""From this share of a limit [%] a market shows as near its limit."""
X_STEP, Y_STEP = 90.0, 150.0  # px between leaves, and between levels

LOAD_CLASSES = ("over-limit", "near-limit", "under-limit", "no-limit")


def tree_positions(markets: Sequence[Mapping]) -> dict[str, dict[str, float]]:
    """A tidy top-down layout: leaves side by side, each parent centred over its children."""
    children: dict[str | None, list[str]] = {}
    for m in markets:
        children.setdefault(m.get("parent_uuid"), []).append(m["uuid"])
    level = {m["uuid"]: int(m.get("level") or 0) for m in markets}
    known = set(level)
    roots = [m["uuid"] for m in markets if m.get("parent_uuid") not in known]
    pos: dict[str, dict[str, float]] = {}
    next_x = 0.0

    def place(uuid: str) -> float:
        nonlocal next_x
        kids = children.get(uuid, [])
        if kids:
            xs = [place(k) for k in kids]
            x = (xs[0] + xs[-1]) / 2
        else:
            x = next_x
            next_x += X_STEP
        pos[uuid] = {"x": x, "y": level[uuid] * Y_STEP}
        return x

    for root in roots:
        place(root)
    return pos


def load_class(load: Mapping) -> str:
    pct = load.get("load_pct")
    if pct is None:
        return "no-limit"
    if load.get("over"):
        return "over-limit"
    return "near-limit" if pct >= NEAR_PCT else "under-limit"


def node_tip(market: Mapping, row: Mapping | None, limits: Limits | None, alerts: Sequence[Mapping]) -> str:
    """The text shown on hover and read by the keyboard list: fees, flows against limits, alerts."""
    parts = [f"fee in force {fmt_price(market.get('fee'))}", f"queued {fmt_price(market.get('queued'))}"]
    if row is not None:
        for way in ("import", "export"):
            limit = getattr(limits, f"{way}_kwh", None) if limits else None
            flow = row.get(f"{way}_kwh")
            text = f"{way} {fmt_energy(flow)}"
            if limit is not None:
                text += f" of {fmt_energy(limit)}"
            parts.append(text)
    for a in alerts:
        parts.append(f"{'ALERT' if a['state'] == ALERTING else 'pending'}: {a['message']}")
    return "; ".join(parts)


def map_elements(
    markets: Sequence[Mapping],
    latest: Mapping[str, Mapping],
    limits: Mapping[str, Limits],
    alerts_by_market: Mapping[str, Sequence[Mapping]],
    queued: Mapping[str, float],
    collapse_over: int = COLLAPSE_OVER,
) -> list[dict]:
    """Cytoscape elements of the grid: nodes then edges.

    Parameters
    ----------
    markets : every market of the grid (``uuid``, ``name``, ``level``, ``parent_uuid``,
        ``fee_ct_per_kwh``, ``next_fee_ct_per_kwh``), parents before children.
    latest : market uuid → its last history row (``import_kwh``, ``export_kwh``, ``fee_ct_per_kwh``,
        ``next_fee_ct_per_kwh``); houses have none.
    limits : market uuid → flow limits [kWh per slot].
    alerts_by_market : market uuid → its open alerts.
    queued : market uuid → the fee [ct/kWh] the console queued for the next slot.
    collapse_over : past this many markets, houses are left out.
    """
    shown = list(markets)
    collapsed = len(shown) > collapse_over
    houses: dict[str, int] = {}
    if collapsed:
        for m in shown:
            if int(m.get("level") or 0) >= 2:
                houses[m.get("parent_uuid")] = houses.get(m.get("parent_uuid"), 0) + 1
        shown = [m for m in shown if int(m.get("level") or 0) < 2]
    pos = tree_positions(shown)
    ids = {m["uuid"] for m in shown}
    nodes, edges = [], []
    for m in shown:
        uuid, level = m["uuid"], int(m.get("level") or 0)
        row = latest.get(uuid)
        lim = limits.get(uuid)
        load = flow_load(row, lim) if row is not None else {"load_pct": None, "over": None}
        alerts = list(alerts_by_market.get(uuid, ()))
        fee = row.get("fee_ct_per_kwh") if row is not None else m.get("fee_ct_per_kwh")
        fee_queued = queued.get(
            uuid, row.get("next_fee_ct_per_kwh") if row is not None else m.get("next_fee_ct_per_kwh")
        )
        label = m["name"]
        if houses.get(uuid):
            label += f" ({houses[uuid]} houses)"
        if load.get("load_pct") is not None:
            label += f"\n{load['load_pct']:.0f} %"
        classes = [("grid", "community", "house")[min(level, 2)], load_class(load)]
        if any(a["state"] == ALERTING for a in alerts):
            classes.append("alerting")
        elif alerts:
            classes.append("pending")
        data = {
            "id": uuid,
            "label": label,
            "name": m["name"],
            "level": level,
            "fee": fee,
            "queued": fee_queued,
            "load_pct": None if load.get("load_pct") is None else round(load["load_pct"], 1),
            "over": load.get("over"),
            "alerts": len(alerts),
            "managed": level < 2,
        }
        data["tip"] = node_tip(data, row, lim, alerts)
        nodes.append({"data": data, "position": pos[uuid], "classes": " ".join(classes)})
        parent = m.get("parent_uuid")
        if parent in ids:
            edges.append({"data": {"id": f"{parent}->{uuid}", "source": parent, "target": uuid}})
    return nodes + edges


STYLESHEET = [
    {
        "selector": "node",
        "style": {
            "label": "data(label)",
            "text-wrap": "wrap",
            "text-max-width": f"{X_STEP - 6:.0f}px",  # neighbours' labels never run into each other
            "text-valign": "bottom",
            "text-margin-y": 4,
            "font-size": 11,
            "color": "#212529",
            "width": 26,
            "height": 26,
            "background-color": PALETTE["muted"],
            "border-width": 1,
            "border-color": "#495057",
        },
    },
    {"selector": ".grid", "style": {"width": 44, "height": 44, "shape": "round-rectangle", "font-size": 13}},
    {"selector": ".community", "style": {"width": 34, "height": 34}},
    {"selector": ".house", "style": {"width": 12, "height": 12, "font-size": 8, "label": ""}},
    {"selector": ".under-limit", "style": {"background-color": PALETTE["live"]}},
    {"selector": ".near-limit", "style": {"background-color": PALETTE["export"]}},
    {"selector": ".over-limit", "style": {"background-color": PALETTE["over_limit"], "shape": "diamond"}},
    {"selector": ".alerting", "style": {"border-width": 5, "border-color": "#7A0000"}},
    {
        "selector": ".pending",
        "style": {"border-width": 4, "border-color": PALETTE["warning"], "border-style": "dashed"},
    },
    {"selector": "node:selected", "style": {"overlay-opacity": 0.15, "overlay-color": "#1971C2"}},
    {"selector": "edge", "style": {"width": 1.5, "line-color": "#ADB5BD", "curve-style": "taxi"}},
]


def grid_map(elements: list[dict], map_id: str, height_px: int = 520) -> cyto.Cytoscape:
    """The ``Cytoscape`` component: preset positions, no animation, zoom bounded."""
    return cyto.Cytoscape(
        id=map_id,
        elements=elements,
        layout={"name": "preset", "fit": True, "padding": 30},
        stylesheet=STYLESHEET,
        style={"width": "100%", "height": f"{height_px}px"},
        minZoom=0.2,
        maxZoom=1.2,  # a small grid stays at its size instead of filling the box
        autoungrabify=True,
        boxSelectionEnabled=False,
        responsive=True,
    )
