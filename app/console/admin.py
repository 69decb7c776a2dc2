"""``/admin``: the users of the deployment, for grid operators with the admin right.

Add a user, change a role, grant or revoke markets, reset a password, give or take the admin
right, remove a user: each a form POST with the session's CSRF token, carried out on the store's
``users`` table (``app.api.auth.UserBook``) and in force at once on every worker (a removed
user's session and tokens stop working at their next request). The same as ``python -m app
users ...`` on the command line. An admin cannot remove themselves or take their own admin
right or role away (the deployment would lose its way in). Anyone else gets a 403 page.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from html import escape

from flask import Blueprint, Flask, current_app, flash, get_flashed_messages, redirect, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import generate_csrf

from app.api.auth import ROLES, UnknownUser, User, UserBook, UserExists
from app.console.auth import NotAllowed, require_admin

bp = Blueprint("console_admin", __name__)

STYLE = """body{font-family:system-ui,sans-serif;background:#f4f6f8;margin:0;color:#222}
header{background:#fff;box-shadow:0 1px 4px #0002;padding:.8rem 1.5rem;
display:flex;gap:1.5rem;align-items:center}
header h1{font-size:1.1rem;margin:0;flex:1}a{color:#1c7ed6}main{padding:1.5rem;max-width:72rem}
table{border-collapse:collapse;background:#fff;width:100%;box-shadow:0 1px 4px #0001}
th,td{padding:.45rem .6rem;border-bottom:1px solid #e3e6ea;text-align:left;
font-size:.88rem;vertical-align:top}
form.inline{display:inline-flex;gap:.3rem;margin:0 .4rem .3rem 0}
input,select{padding:.25rem .4rem;border:1px solid #bbb;border-radius:4px;font-size:.85rem}
button{padding:.25rem .6rem;background:#1c7ed6;color:#fff;border:0;border-radius:4px;
font-size:.85rem;cursor:pointer}
button.danger{background:#c92a2a}.msg{padding:.6rem .8rem;border-radius:4px;margin-bottom:1rem}
.ok{background:#e6f4ea;color:#2b7a3d}.err{background:#fdecea;color:#c92a2a}
section{background:#fff;padding:1rem;margin-top:1.5rem;box-shadow:0 1px 4px #0001}
section h2{font-size:1rem;margin:0 0 .6rem}label{font-size:.82rem;margin-right:.25rem}"""


def _books() -> UserBook:
    return current_app.extensions["gridfee"].users


def _form(action: str, user: str, inner: str, danger: bool = False, label: str = "") -> str:
    return (
        f'<form class="inline" method="post" action="/admin">'
        f'<input type="hidden" name="csrf_token" value="{escape(generate_csrf())}">'
        f'<input type="hidden" name="action" value="{action}">'
        f'<input type="hidden" name="username" value="{escape(user)}">{inner}'
        f'<button type="submit"{" class=danger" if danger else ""} name="do" value="{action}">'
        f"{escape(label or action)}</button></form>"
    )


def _row(user: User, me: User) -> str:
    markets = "every market" if user.markets is None else ", ".join(sorted(user.markets)) or "none"
    roles = "".join(f'<option value="{r}"{" selected" if r == user.role else ""}>{r}</option>' for r in ROLES)
    name = escape(user.username)
    actions = [
        _form(
            "set-role",
            user.username,
            f'<select name="role" aria-label="role of {name}">{roles}</select>',
            label="set role",
        ),
        _form(
            "grant",
            user.username,
            f'<input name="markets" placeholder="markets, or *" size="16" aria-label="grant to {name}">',
        ),
        _form(
            "revoke",
            user.username,
            f'<input name="markets" placeholder="markets, or *" size="16" aria-label="revoke from {name}">',
        ),
        _form(
            "reset",
            user.username,
            f'<input name="password" type="password" placeholder="new password" size="12" '
            f'aria-label="new password of {name}">',
            label="reset password",
        ),
        _form(
            "set-admin",
            user.username,
            f'<input type="hidden" name="admin" value="{"off" if user.admin else "on"}">',
            label="take admin right" if user.admin else "give admin right",
        ),
    ]
    if user.username != me.username:
        actions.append(_form("remove", user.username, "", danger=True))
    return (
        f'<tr id="user-{name}"><td>{name}</td><td>{escape(user.role)}</td>'
        f"<td>{'admin' if user.admin else ''}</td><td>{escape(markets)}</td><td>{''.join(actions)}</td></tr>"
    )


def page(me: User, message: str = "", error: bool = False, status: int = 200) -> ResponseReturnValue:
    users = _books().all()
    note = (
        f'<div class="msg {"err" if error else "ok"}" id="admin-message">{escape(message)}</div>'
        if message
        else ""
    )
    roles = "".join(f'<option value="{r}">{r}</option>' for r in ROLES)
    html = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Users - Grid Fee Console</title><meta name="viewport" content="width=device-width, initial-scale=1">
<style>{STYLE}</style></head><body><header><h1>Grid Fee Console: users</h1><a href="/">Console</a>
<span>{escape(me.username)}</span><a href="/logout">Sign out</a></header><main>{note}
<table id="users"><thead><tr><th>User</th><th>Role</th><th>Admin</th><th>Markets</th><th>Change</th>
</tr></thead>
<tbody>{"".join(_row(u, me) for u in users)}</tbody></table>
<section><h2>Add a user</h2><form method="post" action="/admin" id="add-user">
<input type="hidden" name="csrf_token" value="{escape(generate_csrf())}">
<input type="hidden" name="action" value="add">
<label for="new-username">Name</label><input id="new-username" name="username" size="14">
<label for="new-password">Password</label><input id="new-password" name="password" type="password" size="14">
<label for="new-role">Role</label><select id="new-role" name="role">{roles}</select>
<label for="new-markets">Markets</label><input id="new-markets" name="markets" value="*" size="18">
<label><input type="checkbox" name="admin" value="on"> admin</label>
<button type="submit" id="add-user-button">Add</button></form>
<p style="font-size:.8rem;color:#555">Markets: names or uuids separated by commas, * for every market.
A password has at least 8 characters. The same from a shell: <code>python -m app users --help</code>.</p>
</section></main></body></html>"""
    return html, status, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}


def _markets(raw: str) -> list[str] | None:
    raw = (raw or "").strip()
    if raw == "*":
        return None
    found = [m.strip() for m in raw.split(",") if m.strip()]
    if not found:
        raise ValueError("name at least one market, or * for every market")
    return found


def _admin_only(view: Callable[[User], ResponseReturnValue]) -> Callable[[], ResponseReturnValue]:
    """``view(me)`` for a signed-in admin; anybody else gets the forbidden page (403) saying why."""

    @functools.wraps(view)
    def guarded() -> ResponseReturnValue:
        try:
            me = require_admin()
        except NotAllowed as exc:
            back = '<a href="/">Back to the console</a>'
            return (
                f'<!doctype html><p id="admin-forbidden">{escape(str(exc))}. {back}</p>',
                403,
                {"Content-Type": "text/html; charset=utf-8"},
            )
        return view(me)

    return guarded


@bp.get("/admin")
@_admin_only
def admin_page(me: User) -> ResponseReturnValue:
    done = get_flashed_messages()
    return page(me, done[-1] if done else "")


def change(me: User, form: Mapping[str, str]) -> str:
    """Carry out one admin form; the message (``ValueError``/``KeyError`` when refused)."""
    book = _books()
    action = form.get("action", "")
    name = (form.get("username") or "").strip()
    if action == "add":
        user = book.add(
            name,
            form.get("password", ""),
            form.get("role", "viewer"),
            _markets(form.get("markets", "*")),
            form.get("admin") == "on",
            source="admin",
        )
        return f"added {user.username} ({user.role})"
    if book.get(name) is None:
        raise UnknownUser(f"no user {name!r}")
    if action == "remove":
        if name == me.username:
            raise ValueError("you cannot remove yourself")
        book.remove(name)
        return f"removed {name}"
    if action == "set-role":
        if name == me.username and form.get("role") != "grid_operator":
            raise ValueError("you cannot take your own grid operator role")
        user = book.set_role(name, form.get("role", ""))
        return f"{name} is now {user.role}"
    if action == "set-admin":
        if name == me.username and form.get("admin") != "on":
            raise ValueError("you cannot take your own admin right")
        book.set_admin(name, form.get("admin") == "on")
        return f"{name} {'has' if form.get('admin') == 'on' else 'no longer has'} the admin right"
    if action == "reset":
        book.set_password(name, form.get("password", ""))
        return f"password of {name} reset"
    if action in ("grant", "revoke"):
        user = book.get(name)
        picked = _markets(form.get("markets", ""))
        if action == "grant":
            markets = None if picked is None or user.markets is None else user.markets | set(picked)
        elif picked is None:
            markets = []
        elif user.markets is None:
            raise ValueError(f"{name} may manage every market; grant the ones to keep instead")
        else:
            markets = user.markets - set(picked)
        book.set_markets(name, markets)
        return f"markets of {name} changed"
    raise ValueError(f"unknown action {action!r}")


@bp.post("/admin")
@_admin_only
def admin_change(me: User) -> ResponseReturnValue:
    # the CSRF token was checked by the console's guard (app.console.auth)
    try:
        message = change(me, request.form)
    except UnknownUser as exc:
        return page(me, exc.args[0], error=True, status=404)
    except (UserExists, ValueError) as exc:
        return page(me, str(exc), error=True, status=400)
    current_app.logger.warning("admin %s: %s", me.username, message)
    flash(message)
    return redirect("/admin", code=303)


def install(server: Flask) -> None:
    server.register_blueprint(bp)
