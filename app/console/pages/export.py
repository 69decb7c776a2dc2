"""The Excel download: the slot history of the managed markets, fee commands, settings."""

from __future__ import annotations

from typing import IO

from dash import dcc

from app.console.pages.common import console
from app.export.excel import export_filename, normalise_range, write_history_workbook


def excel_download(start_date: str | None, end_date: str | None) -> dict:
    """``dcc.Download`` data; ValueError (shown next to the button) for an unusable range."""
    normalise_range(start_date, end_date)  # refuse a bad range before writing anything
    data = console()
    markets = [{"uuid": m["uuid"], "name": m["name"], "level": m["level"]} for m in data.markets()]
    text = data.scenario_text()
    zone = data.clock_state().get("time_zone")

    def write(out: IO[bytes]) -> None:
        write_history_workbook(out, data.ops, markets, start_date, end_date, text, None, time_zone=zone)

    return dcc.send_bytes(write, export_filename(start_date, end_date))
