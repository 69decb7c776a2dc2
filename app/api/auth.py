"""Users, roles, market grants and bearer tokens.

Users live in the store's ``users`` table (migration 0005): added, changed and removed on a
running deployment with ``python -m app users ...`` or on the console's admin page, without a
redeploy. ``USERS_FILE`` (YAML or JSON) still works as a seed: its users that the table does not
have yet are added at start-up. In demo mode the two demo users ``operator``/``operator`` (grid
operator of every market, with the admin right) and ``viewer``/``viewer`` are added too; their rows
count in demo mode only. ``ADMIN_PASSWORD`` adds a first grid operator ``ADMIN_USERNAME``
("admin") with the admin right when no user of that name exists. Passwords are stored hashed
(werkzeug's scrypt). A token is the username signed with ``SECRET_KEY`` and a timestamp
(itsdangerous): it expires after ``TOKEN_TTL_S`` and dies with the user's removal.

A users file::

    users:
      - username: alice
        password_hash: "scrypt:32768:8:1$..."   # python -m app.api.auth hash <password>
        role: grid_operator                      # or viewer
        markets: ["Community North"]             # names or uuids; "*" = every market
        admin: true                              # may manage users (optional, default false)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import Engine, Row, Select, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from app.api.errors import HttpError
from app.config import Settings
from app.store.schema import users as users_table

ROLES = ("grid_operator", "viewer")
TOKEN_TTL_S = 3600
MAX_USERNAME = 200
MIN_PASSWORD = 8  # for passwords set by the CLI or the admin page (the demo users' are shorter)
_DUMMY_HASH: list[str] = []  # compared against when the user is unknown: the same cost


class AuthError(HttpError):
    """No token, a bad or expired one, or a user without the right (401, 403)."""


@dataclass(frozen=True)
class User:
    """A user; also what Flask-Login keeps as the console's ``current_user``."""

    username: str
    password_hash: str
    role: str
    markets: frozenset[str] | None = None  # None = every market; else names or uuids
    admin: bool = False  # may manage users (the console's admin page)

    # Flask-Login's user interface
    is_authenticated = True
    is_active = True
    is_anonymous = False

    @property
    def password_mark(self) -> str:
        """A short digest of the password hash: sessions and tokens carry it, so that a changed
        password ends the sessions and tokens issued before."""
        return hashlib.sha256(self.password_hash.encode("utf-8")).hexdigest()[:16]

    def get_id(self) -> str:
        return f"{self.username}|{self.password_mark}"

    def may_manage(self, market_uuid: str, market_name: str) -> bool:
        if self.role != "grid_operator":
            return False
        return self.markets is None or market_uuid in self.markets or market_name in self.markets


def check_username(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > MAX_USERNAME or not all(c.isalnum() or c in "-_.@" for c in name):
        raise ValueError(
            f"a username is 1 to {MAX_USERNAME} letters, digits or '-', '_', '.', '@', got {name!r}"
        )
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return role


def check_password_strength(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise ValueError(f"a password has at least {MIN_PASSWORD} characters")
    return password


def users_from_file(path: Path) -> dict[str, User]:
    """The users of a users file; ``ValueError`` naming the file when it cannot be used."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ValueError(f"users file {path}: cannot read it: {exc}") from None
    found = {}
    try:
        entries = list((data or {}).get("users", []))
    except (AttributeError, TypeError):
        raise ValueError(f"users file {path}: expected a mapping with a 'users' list") from None
    for i, entry in enumerate(entries):
        try:
            role = check_role(entry["role"])
            markets = entry.get("markets", "*")
            grants = None if markets == "*" else frozenset(str(m) for m in markets)
            name = check_username(entry["username"])
            found[name] = User(
                name, str(entry["password_hash"]), role, grants, bool(entry.get("admin", False))
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"users file {path}: users[{i}]: {exc}") from None
    if not found:
        raise ValueError(f"users file {path}: no users")
    return found


def demo_users() -> dict[str, User]:
    return {
        "operator": User("operator", generate_password_hash("operator"), "grid_operator", None, True),
        "viewer": User("viewer", generate_password_hash("viewer"), "viewer"),
    }


def _markets_json(markets: Iterable[str] | None) -> str | None:
    return None if markets is None else json.dumps(sorted({str(m) for m in markets}))


class UserExists(ValueError):
    pass


class UnknownUser(KeyError):
    pass


class UserBook:
    """The users of the store's ``users`` table (``include_demo``: the demo rows count too).

    Every read goes to the database, so a user added, changed or removed by one process (the CLI,
    another worker's admin page) counts at once in every other.
    """

    def __init__(self, engine: Engine, include_demo: bool = True):
        self.engine = engine
        self.include_demo = include_demo

    def _visible(self, query: Select) -> Select:
        return query if self.include_demo else query.where(users_table.c.source != "demo")

    @staticmethod
    def _user(row: Row) -> User:
        markets = None if row.markets is None else frozenset(json.loads(row.markets))
        return User(row.username, row.password_hash, row.role, markets, bool(row.admin))

    def by_session_id(self, session_id: str) -> User | None:
        """The user of a session's id (``User.get_id``), None when gone or its password changed."""
        name, _, mark = (session_id or "").rpartition("|")
        user = self.get(name)
        return user if user is not None and hmac.compare_digest(mark, user.password_mark) else None

    def get(self, username: str) -> User | None:
        if not isinstance(username, str) or not username or len(username) > MAX_USERNAME:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                self._visible(select(users_table).where(users_table.c.username == username))
            ).first()
        return None if row is None else self._user(row)

    def all(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(self._visible(select(users_table).order_by(users_table.c.username)))
            return [self._user(r) for r in rows]

    @property
    def users(self) -> dict[str, User]:
        """Every user by name (a snapshot)."""
        return {u.username: u for u in self.all()}

    def check_password(self, username: str, password: str) -> User:
        user = self.get(username)
        if user is None:
            if not _DUMMY_HASH:
                _DUMMY_HASH.append(generate_password_hash("not a password"))
            check_password_hash(_DUMMY_HASH[0], password or "")  # the same cost as a known name
            raise AuthError(401, "bad_credentials", "unknown user or wrong password")
        if not check_password_hash(user.password_hash, password or ""):
            raise AuthError(401, "bad_credentials", "unknown user or wrong password")
        return user

    # -- changes --------------------------------------------------------------------------------
    def add(
        self,
        username: str,
        password: str | None = None,
        role: str = "viewer",
        markets: Iterable[str] | None = None,
        admin: bool = False,
        source: str = "cli",
        password_hash: str | None = None,
    ) -> User:
        """Add a user (``UserExists`` when the name is taken, ``ValueError`` for bad values)."""
        username = check_username(username)
        check_role(role)
        if password_hash is None:
            password_hash = generate_password_hash(check_password_strength(password or ""))
        now = time.time()
        row = {
            "username": username,
            "password_hash": password_hash,
            "role": role,
            "markets": _markets_json(markets),
            "admin": bool(admin),
            "source": source,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self.engine.begin() as conn:
                taken = conn.execute(
                    select(users_table.c.source).where(users_table.c.username == username)
                ).first()
                if taken is not None:
                    if taken.source == "demo" and not self.include_demo:
                        conn.execute(delete(users_table).where(users_table.c.username == username))
                    else:
                        raise UserExists(f"user {username!r} exists already")
                conn.execute(insert(users_table).values(**row))
        except IntegrityError:
            raise UserExists(f"user {username!r} exists already") from None
        return User(
            username, password_hash, role, None if markets is None else frozenset(markets), bool(admin)
        )

    def _change(self, username: str, **values: object) -> User:
        values["updated_at"] = time.time()
        with self.engine.begin() as conn:
            done = conn.execute(
                self._visible(update(users_table).where(users_table.c.username == username)).values(**values)
            )
        if done.rowcount == 0:
            raise UnknownUser(f"no user {username!r}")
        user = self.get(username)
        assert user is not None
        return user

    def set_password(self, username: str, password: str) -> User:
        return self._change(username, password_hash=generate_password_hash(check_password_strength(password)))

    def set_role(self, username: str, role: str) -> User:
        return self._change(username, role=check_role(role))

    def set_markets(self, username: str, markets: Iterable[str] | None) -> User:
        return self._change(username, markets=_markets_json(markets))

    def set_admin(self, username: str, admin: bool) -> User:
        return self._change(username, admin=bool(admin))

    def remove(self, username: str) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(self._visible(delete(users_table).where(users_table.c.username == username)))
        if done.rowcount == 0:
            raise UnknownUser(f"no user {username!r}")

    def seed(self, users: Iterable[User], source: str) -> list[str]:
        """Add each of ``users`` that the table does not have yet; the names added."""
        added = []
        for u in users:
            try:
                self.add(u.username, None, u.role, u.markets, u.admin, source, password_hash=u.password_hash)
            except UserExists:
                continue
            added.append(u.username)
        return added


def seed_users(book: UserBook, settings: Settings) -> None:
    """The start-up seeds: the demo users (demo mode), ``USERS_FILE``, ``ADMIN_PASSWORD``."""
    if settings.demo:
        book.seed(demo_users().values(), "demo")
    if settings.users_file is not None:
        book.seed(users_from_file(settings.users_file).values(), "file")
    if settings.admin_password:
        try:
            book.add(settings.admin_username, settings.admin_password, "grid_operator", None, True, "env")
        except UserExists:
            pass


class TokenSigner:
    def __init__(self, secret_key: str, ttl_s: int = TOKEN_TTL_S):
        self._serializer = URLSafeTimedSerializer(secret_key, salt="grid-operator-api-token")
        self.ttl_s = ttl_s

    def issue(self, user: User) -> str:
        return self._serializer.dumps({"u": user.username, "p": user.password_mark})

    def verify(self, token: str, users: UserBook) -> User:
        try:
            payload = self._serializer.loads(token, max_age=self.ttl_s)
        except SignatureExpired:
            raise AuthError(401, "token_expired", "the token has expired; ask for a new one") from None
        except BadSignature:
            raise AuthError(401, "invalid_token", "the token is not valid") from None
        user = users.get(payload.get("u")) if isinstance(payload, dict) else None
        if user is None:
            raise AuthError(401, "invalid_token", "the token's user no longer exists")
        if payload.get("p") != user.password_mark:
            raise AuthError(
                401, "invalid_token", "the password changed since this token was issued; ask for a new one"
            )
        return user


def bearer_token(header: str | None) -> str:
    if not header:
        raise AuthError(401, "missing_token", "send Authorization: Bearer <token> (POST /api/v1/auth/token)")
    scheme, _, token = header.partition(" ")
    if scheme.lower() not in ("bearer", "jwt") or not token.strip():
        raise AuthError(401, "invalid_token", "the Authorization header must be 'Bearer <token>'")
    return token.strip()


if __name__ == "__main__":  # python -m app.api.auth hash <password>
    if len(sys.argv) == 3 and sys.argv[1] == "hash":
        print(generate_password_hash(sys.argv[2]))
    else:
        print("usage: python -m app.api.auth hash <password>")
