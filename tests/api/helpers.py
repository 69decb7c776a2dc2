"""Helpers of the API tests: an exchange with its app and client, users files, error asserts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash
from werkzeug.test import TestResponse

from app.config import Settings
from app.entry.web import create_app
from app.exchange.generate import generate_scenario
from app.exchange.grid import build_grid
from app.exchange.runner import ExchangeRunner
from app.exchange.scenario import Scenario
from app.store.repo import ExchangeStore

PASSWORDS = {"operator": "operator", "viewer": "viewer"}
API = "/api/v1"
# the statistics of a closed slot on the wire (``last_market_stats``, the ``market_stats`` event)
STATS_FIELDS = {
    "min_trade_rate",
    "median_trade_rate",
    "avg_trade_rate",
    "max_trade_rate",
    "total_traded_energy_kWh",
    "market_fee_revenue",
    "current_market_fee",
    "next_market_fee",
}


@dataclass
class Exchange:
    store: ExchangeStore
    runner: ExchangeRunner
    settings: Settings
    app: Flask
    client: FlaskClient
    passwords: dict[str, str]
    _tokens: dict[str, str] = field(default_factory=dict)

    # -- the exchange ---------------------------------------------------------------------
    @property
    def scenario(self) -> Scenario:
        return self.store.scenario

    def label(self, slot: int) -> str:
        return self.runner.clock.label(slot)

    def close(self, n: int = 1) -> list[dict]:
        """Close ``n`` slots; returns their market_info events."""
        return [self.runner.close_running_slot() for _ in range(n)]

    def market(self, name: str) -> str:
        (uuid,) = [m.uuid for m in self.store.grid.markets if m.name == name]
        return uuid

    @property
    def communities(self) -> list[str]:
        return [m.uuid for m in self.store.grid.markets if m.level == 1]

    @property
    def market_uuids(self) -> list[str]:
        return [m.uuid for m in self.store.grid.markets]

    def fees(self, slot: int) -> list[float]:
        return self.store.fees_for_slot(slot).tolist()

    # -- HTTP -----------------------------------------------------------------------------
    def token(self, username: str = "operator") -> str:
        if username not in self._tokens:
            response = self.client.post(
                f"{API}/auth/token", json={"username": username, "password": self.passwords[username]}
            )
            assert response.status_code == 200, response.get_data(as_text=True)
            self._tokens[username] = response.json["access_token"]
        return self._tokens[username]

    def auth(self, username: str = "operator") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}"}

    def get(self, path: str, user: str = "operator", **kwargs) -> TestResponse:
        return self.client.get(API + path, headers=self.auth(user), **kwargs)

    def post(self, path: str, user: str = "operator", **kwargs) -> TestResponse:
        return self.client.post(API + path, headers=self.auth(user), **kwargs)

    def batch(
        self, commands: dict[str, list[dict]], user: str = "operator", transaction_id: str | None = None
    ) -> TestResponse:
        body: dict = {"batch_commands": commands}
        if transaction_id is not None:
            body["transaction_id"] = transaction_id
        return self.post("/batch-commands", user=user, json=body)


def grid_fees(fee: object) -> dict:
    return {"type": "grid_fees", "data": {"fee_const": fee}}


def write_users(path: Path, users: dict[str, tuple[str, str, list[str] | str]]) -> Path:
    """A users file: ``{username: (password, role, markets)}``."""
    entries = [
        {
            "username": name,
            "password_hash": generate_password_hash(password),
            "role": role,
            "markets": markets,
        }
        for name, (password, role, markets) in users.items()
    ]
    path.write_text(yaml.safe_dump({"users": entries}), encoding="utf-8")
    return path


def build_exchange(
    path: Path,
    environ: dict[str, str] | None = None,
    passwords: dict[str, str] | None = None,
    scenario: Scenario | None = None,
    slot_seconds: float = 0.0,
) -> Exchange:
    """An exchange whose store lives in the directory ``path`` (no slot closed yet)."""
    scenario = scenario or generate_scenario(2, 3, seed=1)
    store = ExchangeStore.open(f"sqlite:///{path}/s.sqlite3", scenario, build_grid(scenario))
    runner = ExchangeRunner(store, slot_seconds=slot_seconds)
    runner.resume()
    env = {
        "INSTANCE_DIR": str(path),
        "SECRET_KEY": "test",
        "SLOT_SECONDS": str(slot_seconds),
        **(environ or {}),
    }
    settings = Settings.from_env(env)
    app = create_app(settings, store=store)
    return Exchange(store, runner, settings, app, app.test_client(), {**PASSWORDS, **(passwords or {})})


def assert_error(response: TestResponse, status: int, code: str | None = None) -> dict:
    """A JSON error ``{"error", "message"}`` with ``status`` (and ``code`` when given)."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json", response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("message"), str) and body["message"], body
    if code is not None:
        assert body["error"] == code, body
    return body
