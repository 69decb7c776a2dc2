"""The Excel download: the slot history of the managed markets, fee commands, settings."""

from __future__ import annotations

from dash import dcc
from flask import current_app

from app.console.pages.common import console
from app.export.excel import export_filename, normalise_range, write_history_workbook


def scenario_text() -> str | None:
    """The scenario the embedded exchange runs (none when the console drives a remote one)."""
    from app.exchange.scenario import dump_scenario

    api = current_app.extensions.get("gridfee")
    service = getattr(api, "service", None)
    return None if service is None else dump_scenario(service.scenario)


def excel_download(start_date: str | None, end_date: str | None) -> dict:
    """``dcc.Download`` data; ValueError (shown next to the button) for an unusable range."""
    normalise_range(start_date, end_date)  # refuse a bad range before writing anything
    data = console()
    markets = [{"uuid": m["uuid"], "name": m["name"], "level": m["level"]} for m in data.markets()]
    text = scenario_text()
    zone = data.clock_state().get("time_zone")

    def write(out) -> None:  # noqa: ANN001
        write_history_workbook(out, data.ops, markets, start_date, end_date, text, None, time_zone=zone)

    return dcc.send_bytes(write, export_filename(start_date, end_date))
