"""Users, roles, market grants and bearer tokens.

Users come from ``USERS_FILE`` (YAML or JSON) or, in demo mode, are the two demo users
``operator``/``operator`` (grid operator of every market) and ``viewer``/``viewer``. Passwords
are stored hashed (werkzeug's scrypt). A token is the username signed with ``SECRET_KEY`` and a
timestamp (itsdangerous): it expires after ``TOKEN_TTL_S`` and dies with the user's removal.

A users file::

    users:
      - username: alice
        password_hash: "scrypt:32768:8:1$..."   # python -m app.api.auth hash <password>
        role: grid_operator                      # or viewer
        markets: ["Community North"]             # names or uuids; "*" = every market
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from werkzeug.security import check_password_hash, generate_password_hash

ROLES = ("grid_operator", "viewer")
TOKEN_TTL_S = 3600


class AuthError(Exception):
    def __init__(self, status: int, code: str, message: str):
        self.status, self.code, self.message = status, code, message
        super().__init__(message)


@dataclass(frozen=True)
class User:
    username: str
    password_hash: str
    role: str
    markets: frozenset[str] | None = None  # None = every market; else names or uuids

    def may_manage(self, market_uuid: str, market_name: str) -> bool:
        if self.role != "grid_operator":
            return False
        return self.markets is None or market_uuid in self.markets or market_name in self.markets


@dataclass
class UserBook:
    users: dict[str, User] = field(default_factory=dict)

    @classmethod
    def demo(cls) -> UserBook:
        return cls(
            {
                "operator": User("operator", generate_password_hash("operator"), "grid_operator"),
                "viewer": User("viewer", generate_password_hash("viewer"), "viewer"),
            }
        )

    @classmethod
    def from_file(cls, path: Path) -> UserBook:
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise ValueError(f"users file {path}: cannot read it: {exc}") from None
        users = {}
        for i, entry in enumerate((data or {}).get("users", [])):
            try:
                role = entry["role"]
                if role not in ROLES:
                    raise ValueError(f"role must be one of {ROLES}")
                markets = entry.get("markets", "*")
                grants = None if markets == "*" else frozenset(str(m) for m in markets)
                users[entry["username"]] = User(entry["username"], entry["password_hash"], role, grants)
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"users file {path}: users[{i}]: {exc}") from None
        if not users:
            raise ValueError(f"users file {path}: no users")
        return cls(users)

    def check_password(self, username: str, password: str) -> User:
        user = self.users.get(username)
        if user is None or not check_password_hash(user.password_hash, password):
            raise AuthError(401, "bad_credentials", "unknown user or wrong password")
        return user


class TokenSigner:
    def __init__(self, secret_key: str, ttl_s: int = TOKEN_TTL_S):
        self._serializer = URLSafeTimedSerializer(secret_key, salt="grid-operator-api-token")
        self.ttl_s = ttl_s

    def issue(self, user: User) -> str:
        return self._serializer.dumps({"u": user.username})

    def verify(self, token: str, users: UserBook) -> User:
        try:
            payload = self._serializer.loads(token, max_age=self.ttl_s)
        except SignatureExpired:
            raise AuthError(401, "token_expired", "the token has expired; ask for a new one") from None
        except BadSignature:
            raise AuthError(401, "invalid_token", "the token is not valid") from None
        user = users.users.get(payload.get("u")) if isinstance(payload, dict) else None
        if user is None:
            raise AuthError(401, "invalid_token", "the token's user no longer exists")
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
