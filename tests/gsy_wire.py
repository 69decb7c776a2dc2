"""A client that talks to the SDK face exactly as gsy-e-sdk 1.3 / gsy-framework do on the wire.

HTTP: ``requests`` with ``data=json.dumps(body)``, ``Content-Type: application/json`` and
``Authorization: JWT <token>``, a fresh ``transaction_id`` in every body, GETs included
(reference §1.3). Websockets: the legacy asyncio client of ``websockets`` 12 with
``extra_headers``, in a thread of its own, as ``WebsocketThread`` runs it; every frame received
is kept with whether it came as binary.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field

import requests
import websockets

READ_CONFIGURATION = (
    'query { readConfiguration(uuid: "{sim}")\n                { scenarioData { latest { serialized } } } }'
)


@dataclass
class Frame:
    binary: bool
    message: dict


class Socket:
    """One websocket opened like the SDK's ``WebsocketThread``; ``next()`` returns frames."""

    def __init__(self, uri: str, token: str):
        self.uri, self.token = uri, token
        self.frames: queue.Queue[Frame] = queue.Queue()
        self.error: BaseException | None = None
        self.opened = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._ws = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self.opened.wait(10):
            raise TimeoutError(f"websocket {uri} did not open")
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        try:
            self._ws = await websockets.connect(
                self.uri, extra_headers={"Authorization": f"JWT {self.token}"}
            )
        except BaseException as exc:  # handed to the test thread
            self.error = exc
            self.opened.set()
            return
        self._stop = asyncio.Event()
        self.opened.set()
        reader = asyncio.ensure_future(self._read())
        stopper = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait([reader, stopper], return_when=asyncio.FIRST_COMPLETED)
        await self._ws.close()
        for task in (reader, stopper):
            task.cancel()
        await asyncio.gather(reader, stopper, return_exceptions=True)

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                binary = isinstance(raw, bytes)
                text = raw.decode("utf-8") if binary else raw
                self.frames.put(Frame(binary, json.loads(text)))
        except websockets.ConnectionClosed:
            pass

    def next(self, timeout: float = 10.0, skip_events: tuple[str, ...] = ()) -> Frame:
        deadline = time.monotonic() + timeout
        while True:
            frame = self.frames.get(timeout=max(deadline - time.monotonic(), 0.01))
            if frame.message.get("event") not in skip_events:
                return frame

    def quiet(self, seconds: float = 0.6) -> list[Frame]:
        """Frames that arrive within ``seconds`` (to check that nothing does)."""
        time.sleep(seconds)
        out = []
        while not self.frames.empty():
            out.append(self.frames.get_nowait())
        return out

    def close(self) -> None:
        """Close as a client does (close frame, wait for the server's) and end the thread."""
        if self._thread.is_alive() and self._ws is not None:
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # the loop has ended meanwhile
                pass
        self._thread.join(15)

    @property
    def close_code(self) -> int | None:
        return None if self._ws is None else self._ws.close_code


@dataclass
class SdkWire:
    """A server's SDK face as the SDK reaches it: base URL and simulation id."""

    url: str
    sim: str
    sockets: list[Socket] = field(default_factory=list, kw_only=True)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/external-ws"

    @property
    def aggregator_prefix(self) -> str:
        return f"{self.url}/external-connection/aggregator-api/{self.sim}/"

    # -- what the SDK sends ----------------------------------------------------------------
    def token_answer(self, username: str, password: str) -> requests.Response:
        """The answer to the SDK's sign-in (``POST /api-token-auth/``, a JSON body)."""
        return requests.post(
            f"{self.url}/api-token-auth/",
            data=json.dumps({"username": username, "password": password}),
            headers={"Content-Type": "application/json"},
            timeout=10,
        )

    def token(self, username: str = "operator", password: str | None = None) -> str:
        response = self.token_answer(username, password or username)
        assert response.status_code == 200, response.text
        return response.json()["access"]

    @staticmethod
    def headers(token: str) -> dict[str, str]:
        return {"Content-Type": "application/json", "Authorization": f"JWT {token}"}

    def get(self, url: str, token: str, body: dict | None = None) -> requests.Response:
        payload = {**(body or {}), "transaction_id": str(uuid.uuid4())}
        return requests.get(url, data=json.dumps(payload), headers=self.headers(token), timeout=10)

    def post(
        self, url: str, token: str, body: dict | None = None, tid: str | None = None
    ) -> requests.Response:
        payload = {**(body or {}), "transaction_id": tid or str(uuid.uuid4())}
        return requests.post(url, data=json.dumps(payload), headers=self.headers(token), timeout=10)

    def socket(self, path: str, token: str) -> Socket:
        sock = Socket(f"{self.ws_url}/{self.sim}/{path}", token)
        self.sockets.append(sock)
        return sock

    def graphql_uuids(self, token: str) -> dict[str, str]:
        response = requests.post(
            f"{self.url}/graphql/",
            data=json.dumps({"query": READ_CONFIGURATION.replace("{sim}", self.sim)}),
            headers={**self.headers(token), "Accept": "application/json; charset=utf-8"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        tree = json.loads(
            response.json()["data"]["readConfiguration"]["scenarioData"]["latest"]["serialized"]
        )
        out: dict[str, str] = {}

        def walk(node: dict) -> None:
            out[node["name"]] = node["uuid"]
            for child in node.get("children", []):
                walk(child)

        walk(tree)
        return out
