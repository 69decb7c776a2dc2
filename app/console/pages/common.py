"""What every page's callbacks share: the console's data and the logged-in user."""

from __future__ import annotations

from flask import current_app

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
