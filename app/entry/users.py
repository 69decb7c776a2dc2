"""``python -m app users ...``: the users of a running deployment, changed without a redeploy.

On a PaaS, a one-off process (``heroku run python -m app users add alice --role grid_operator``)
with the app's ``DATABASE_URL``; the web workers see the change at their next request. Commands::

    add NAME [--role grid_operator|viewer] [--markets "A,B" | --markets "*"] [--admin]
    passwd NAME
    list
    remove NAME
    set-role NAME ROLE
    grant NAME MARKET...      (a market's name or uuid; "*": every market)
    revoke NAME MARKET...
    set-admin NAME on|off

A password is asked for twice on a terminal, else read from the first line of standard input
(``printf '%s\\n' "$PW" | python -m app users add ...``); at least 8 characters. Errors print one
line on stderr and exit with status 1.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence

from app.api.auth import MIN_PASSWORD, ROLES, UnknownUser, User, UserBook, UserExists


def _password(prompt: str = "Password: ") -> str:
    if sys.stdin is not None and sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("Again: ") != first:
            raise ValueError("the two passwords differ")
        return first
    line = sys.stdin.readline() if sys.stdin is not None else ""
    return line.rstrip("\r\n")


def _markets(raw: str | None) -> list[str] | None:
    if raw is None or raw.strip() == "*":
        return None
    found = [m.strip() for m in raw.split(",") if m.strip()]
    if not found:
        raise ValueError('--markets: name at least one market, or "*" for every market')
    return found


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m app users", description="Users of this deployment.")
    sub = p.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add", help="add a user (asks for the password)")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="viewer")
    add.add_argument("--markets", help='comma-separated market names or uuids; "*" (default): every market')
    add.add_argument("--admin", action="store_true", help="may manage users on the console's admin page")
    sub.add_parser("passwd", help="set a user's password").add_argument("name")
    sub.add_parser("list", help="every user, role, admin right and markets")
    sub.add_parser("remove", help="remove a user (their tokens and sessions stop working)").add_argument(
        "name"
    )
    role = sub.add_parser("set-role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    for name, what in (("grant", "grant markets"), ("revoke", "revoke markets")):
        g = sub.add_parser(name, help=what)
        g.add_argument("name")
        g.add_argument("markets", nargs="+", help='market names or uuids; "*": every market')
    adm = sub.add_parser("set-admin", help="give or take the admin right")
    adm.add_argument("name")
    adm.add_argument("value", choices=("on", "off"))
    return p


def describe(user: User) -> str:
    markets = "*" if user.markets is None else ",".join(sorted(user.markets)) or "-"
    return f"{user.username}\t{user.role}\t{'admin' if user.admin else '-'}\t{markets}"


def run(book: UserBook, args: argparse.Namespace) -> str:
    """Carry out one command; the line to print."""
    name = getattr(args, "name", None)
    if args.command == "add":
        password = _password()
        user = book.add(name, password, args.role, _markets(args.markets), args.admin, source="cli")
        return f"added {describe(user)}"
    if args.command == "passwd":
        if book.get(name) is None:
            raise UnknownUser(f"no user {name!r}")
        book.set_password(name, _password("New password: "))
        return f"password of {name} changed"
    if args.command == "list":
        return "\n".join(["name\trole\tadmin\tmarkets", *(describe(u) for u in book.all())])
    if args.command == "remove":
        book.remove(name)
        return f"removed {name}"
    if args.command == "set-role":
        return f"changed {describe(book.set_role(name, args.role))}"
    if args.command == "set-admin":
        return f"changed {describe(book.set_admin(name, args.value == 'on'))}"
    user = book.get(name)
    if user is None:
        raise UnknownUser(f"no user {name!r}")
    if args.command == "grant":
        granted = None if "*" in args.markets or user.markets is None else user.markets | set(args.markets)
        return f"changed {describe(book.set_markets(name, granted))}"
    # revoke
    if "*" in args.markets:
        return f"changed {describe(book.set_markets(name, []))}"
    if user.markets is None:
        raise ValueError(f"{name} may manage every market; grant the ones to keep instead (grant NAME ...)")
    return f"changed {describe(book.set_markets(name, user.markets - set(args.markets)))}"


def main(argv: Sequence[str]) -> int:
    from app.config import ConfigError, Settings
    from app.store.db import make_engine, migrate

    args = parser().parse_args(list(argv))
    try:
        settings = Settings.from_env()
        migrate(settings.database_url)
        engine = make_engine(settings.database_url)
    except ConfigError as exc:
        print(f"gridfee users: {exc}", file=sys.stderr)
        return 1
    try:
        print(run(UserBook(engine, include_demo=settings.demo), args))
    except UnknownUser as exc:
        print(f"gridfee users: {exc.args[0]}", file=sys.stderr)
        return 1
    except (UserExists, ValueError) as exc:
        print(f"gridfee users: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


__all__ = ["MIN_PASSWORD", "main"]
