"""The header on every page: connection, running slot, fee deadline, user."""

from __future__ import annotations

from dash import Input, Output

from app import ids
from app.pages.common import console, user_role
from components.header import header_bar


def header_state() -> dict:
    state = dict(console().clock_state())
    user, role = user_role()
    state.update(user=user, role=role)
    return state


def register_callbacks(app) -> None:  # noqa: ANN001
    """This page's callbacks, on ``app`` (each Dash app of the process gets its own)."""

    @app.callback(Output(ids.HEADER, "children"), Input(ids.TICK, "n_intervals"))
    def update_header(_n):
        return header_bar(header_state())
