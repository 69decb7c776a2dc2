"""``GridOperatorClient``: the Grid Operator API from Python, one method per command.

Batch commands have exactly the shape of the seeds: ``{area_uuid: [command, ...]}``::

    client = GridOperatorClient("http://127.0.0.1:8050", "operator", "operator")
    client.batch_command({uuid: [{"type": "grid_fees", "data": {"fee_const": 3}}]})

A ``requests.Session`` with timeouts; reads are retried with backoff when the exchange does not
answer, and so is a batch (it carries a ``transaction_id``, so the server applies it once however
often it arrives). An expired or refused token is renewed once, transparently.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import orjson
import requests

from app.client.transport import EMBEDDED_URL, WSGIAdapter

if TYPE_CHECKING:
    from flask import Flask


class ApiClientError(Exception):
    """The server answered with an error: ``status``, ``code`` and ``message`` say which."""

    def __init__(self, status: int, code: str, message: str, body: object = None):
        self.status, self.code, self.message, self.body = status, code, message, body
        super().__init__(f"{status} {code}: {message}")


class ExchangeUnavailable(Exception):
    """The exchange did not answer (connection refused, timeout) after the retries."""


class GridOperatorClient:
    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        session: requests.Session | None = None,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.5,
    ):
        self.base_url = base_url.rstrip("/")
        self.username, self._password = username, password
        self.session = session or requests.Session()
        self.timeout_s = timeout_s
        self.retries, self.backoff_s = retries, backoff_s
        self._token: str | None = None
        self.role: str | None = None

    @classmethod
    def embedded(cls, wsgi_app: Flask, username: str, password: str, **kwargs: object) -> GridOperatorClient:
        """A client of the exchange served by ``wsgi_app`` in this process (no socket)."""
        session = requests.Session()
        session.mount(EMBEDDED_URL, WSGIAdapter(wsgi_app))
        return cls(EMBEDDED_URL, username, password, session=session, **kwargs)

    # -- plumbing -------------------------------------------------------------------------
    def login(self) -> str:
        body = self._send(
            "POST",
            "/api/v1/auth/token",
            json={"username": self.username, "password": self._password},
            auth=False,
            retry=True,
        )
        self._token, self.role = body["access_token"], body["role"]
        return self._token

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        params: dict | None = None,
        auth: bool = True,
        retry: bool = False,
        timeout: float | None = None,
    ) -> dict | list:
        attempts = 1 + (self.retries if retry else 0)
        renewed = False
        attempt = 0
        while True:
            headers = {}
            if auth:
                if self._token is None:
                    self.login()
                headers["Authorization"] = f"Bearer {self._token}"
            try:
                response = self.session.request(
                    method,
                    self.base_url + path,
                    json=json,
                    params=params,
                    headers=headers,
                    timeout=timeout or self.timeout_s,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                attempt += 1
                if attempt >= attempts:
                    raise ExchangeUnavailable(f"{method} {path}: {exc}") from exc
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
                continue
            if response.status_code == 401 and auth and not renewed:
                renewed = True
                self._token = None  # expired or the server restarted with a new key
                continue
            if response.status_code >= 500 and attempt + 1 < attempts:
                attempt += 1
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
                continue
            body = _json_body(response)
            if response.status_code >= 400:
                if isinstance(body, dict) and "responses" in body:
                    return body  # a batch whose commands all failed: the caller reads each
                code = body.get("error", "error") if isinstance(body, dict) else "error"
                message = (
                    body.get("message", response.text[:200])
                    if isinstance(body, dict)
                    else response.text[:200]
                )
                raise ApiClientError(response.status_code, code, message, body)
            return body

    # -- reads ----------------------------------------------------------------------------
    def clock(self) -> dict:
        return self._send("GET", "/api/v1/clock", retry=True)

    def grid(self) -> dict:
        return self._send("GET", "/api/v1/grid", retry=True)

    def market_cycles(self, after: str | None = None, wait_s: float = 0.0) -> dict:
        params = {"wait": wait_s}
        if after is not None:
            params["after"] = after
        return self._send(
            "GET", "/api/v1/market-cycles", params=params, retry=True, timeout=self.timeout_s + wait_s
        )

    def history(self, area_uuid: str, start: str | None = None, end: str | None = None) -> dict:
        params = {k: v for k, v in (("from", start), ("to", end)) if v is not None}
        return self._send("GET", f"/api/v1/markets/{area_uuid}/history", params=params, retry=True)

    # -- batch commands -------------------------------------------------------------------
    def batch_command(
        self, batch_commands: Mapping[str, Iterable[dict]], transaction_id: str | None = None
    ) -> dict:
        """Send ``{area_uuid: [command, ...]}``; returns ``{"transaction_id", "responses"}``."""
        body = {
            "batch_commands": {area: list(commands) for area, commands in batch_commands.items()},
            "transaction_id": transaction_id or str(uuid.uuid4()),
        }
        return self._send("POST", "/api/v1/batch-commands", json=body, retry=True)

    def market_stats(self, area_uuids: Iterable[str], market_slots: list[str] | None = None) -> dict:
        data = {} if market_slots is None else {"market_slots": market_slots}
        return self.batch_command({u: [{"type": "market_stats", "data": data}] for u in area_uuids})

    def dso_market_stats(self, area_uuids: Iterable[str], market_slots: list[str] | None = None) -> dict:
        data = {} if market_slots is None else {"market_slots": market_slots}
        return self.batch_command({u: [{"type": "dso_market_stats", "data": data}] for u in area_uuids})

    def grid_fees(self, fees: Mapping[str, float]) -> dict:
        """Set ``{area_uuid: fee_ct_per_kwh}`` from the next slot, in one batch."""
        return self.batch_command(
            {u: [{"type": "grid_fees", "data": {"fee_const": f}}] for u, f in fees.items()}
        )


def _json_body(response: requests.Response) -> object:
    """The response's JSON, None when it has none (orjson first: a batch answer of 500 markets
    reads in a fraction of the time; what it refuses, e.g. NaN, ``response.json()`` reads)."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        pass
    try:
        return response.json()
    except ValueError:
        return None
