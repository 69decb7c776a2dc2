"""What every page's callbacks share: the console's data and the logged-in user."""

from __future__ import annotations

from flask import current_app, session

from app.dashboard.data import ConsoleData


def console() -> ConsoleData:
    return current_app.extensions["console"]


def user_role() -> tuple[str | None, str | None]:
    return session.get("user"), session.get("role")


def is_viewer() -> bool:
    return session.get("role") != "grid_operator"
