"""Browser tests of the console: ``dash_duo`` (headless Chromium) against a live embedded exchange.

Each test gets a fresh exchange from the ``live`` fixture: the generated 2 x 3 scenario
(``generate_scenario(2, 3, seed=1)``) in a SQLite file under ``tmp_path``, ``create_app`` on it,
and three threads: the runner closing a slot every ``SLOT_SECONDS`` (0.6 s), the operator agent
(``app.operator.run.start_agent``) and the HTTP server. Teardown leaves the page (so the browser
stops polling), stops the agent (while slots still close, so its long-poll returns), then the
runner, shuts the server down and disposes the engine.

How the app is served: not with ``dash_duo.start_server``. Its ``ThreadedRunner`` runs
``app.run`` and stops it by raising ``SystemExit`` in every thread started after it (that would
hit the runner and agent threads too), and the ``server_url`` setter navigates and waits for
Dash's entry point, which the login redirect never shows. The whole Flask server (API, login,
Dash) is served with ``werkzeug.serving.make_server`` on a free port in a thread instead; the
fixture gives ``dash_duo`` the base URL without navigating (``dash_duo._url``, what
``dash_duo.server_url`` returns), the tests navigate with ``dash_duo.driver.get`` (see
``console_ui.login`` and ``console_ui.open_page``) and wait with dash_duo's helpers.

Chromium: Debian's ``chromium`` and ``chromedriver`` (on PATH; ``DASH_TEST_CHROMEPATH`` picks
another binary). Run with ``--headless``; without a display the suite turns it on by itself.
Downloads land in ``dash_duo.download_path`` (headless downloads are enabled through CDP).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from console_ui import SLOT_SECONDS
from flask import Flask
from selenium.webdriver.chrome.options import Options
from werkzeug.serving import BaseWSGIServer, make_server

from app.config import ROOT, Settings
from app.console.data import ConsoleData
from app.entry.web import create_app
from app.exchange.generate import generate_scenario
from app.exchange.grid import build_grid
from app.exchange.runner import ExchangeRunner
from app.exchange.scenario import load_scenario
from app.operator import timing
from app.operator.agent import OperatorAgent
from app.operator.run import start_agent
from app.operator.store import OperatorStore
from app.store.repo import ExchangeStore

AGENT_LONG_POLL_S = 1.0  # the agent's long-poll: short, so that stopping it takes no longer
HERE = Path(__file__).parent
# selenium 4.2 (pinned by dash[testing]) calls urllib3 1.26's deprecated getheader(s)
SELENIUM_URLLIB3 = "ignore:HTTPResponse.getheader:DeprecationWarning"


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get("DISPLAY") and hasattr(config.option, "headless"):
        config.option.headless = True  # no display: a headed Chromium could not start


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.filterwarnings(SELENIUM_URLLIB3))


def pytest_setup_options() -> Options:
    """dash's hook: Chromium options before dash adds its own (headless, downloads)."""
    options = Options()
    options.add_argument("--window-size=1440,1000")  # the console's desktop layout (lg breakpoint)
    return options


@dataclass
class Live:
    """A running exchange with its console, served at ``url``."""

    url: str
    store: ExchangeStore
    runner: ExchangeRunner
    server: Flask
    settings: Settings
    slot_seconds: float = SLOT_SECONDS
    serving: Serving | None = None  # the HTTP server, which a test may stop and start again

    def stop_server(self) -> None:
        """Stop serving the console (the exchange and the agent go on), as a crashed web process."""
        assert self.serving is not None
        self.serving.stop()

    def start_server(self) -> None:
        """Serve the console again on the same port."""
        assert self.serving is not None
        self.serving.start()

    @property
    def data(self) -> ConsoleData:
        return self.server.extensions["console"]

    @property
    def ops(self) -> OperatorStore:
        return self.data.ops

    @property
    def managed(self) -> list:
        """The markets the console manages (the grid and the communities), in grid order."""
        return [m for m in self.store.grid.markets if m.level in (0, 1)]

    def community(self, k: int = 0):
        return [m for m in self.store.grid.markets if m.level == 1][k]

    def label(self, slot: int) -> str:
        """A slot's label ``YYYY-MM-DDTHH:mm`` (simulated time)."""
        return self.runner.clock.label(slot)

    def last_closed(self) -> int:
        """The last closed slot's number (-1 before the first one closed)."""
        last = self.store.clock_state().last_closed_slot
        return -1 if last is None else last

    def running(self) -> int:
        return self.store.clock_state().running_slot

    def wait_closed(self, slot: int, timeout: float = 15.0) -> None:
        """Wait until slot ``slot`` closed on the exchange."""
        deadline = time.monotonic() + timeout
        while self.last_closed() < slot:
            if time.monotonic() > deadline:
                raise TimeoutError(f"slot {slot} did not close within {timeout} s ({self.last_closed()})")
            time.sleep(0.1)

    def wait_slots(self, n: int, timeout: float | None = None) -> int:
        """Wait until ``n`` more slots closed; returns the last closed slot."""
        target = self.last_closed() + n
        self.wait_closed(target, timeout or 10.0 + 2 * n * self.slot_seconds)
        return target

    def seconds_to_send(self) -> tuple[int, float]:
        """(running slot, seconds until its send point) from the exchange's clock API."""
        clock = self.data.client.clock()
        left = float(clock["seconds_to_deadline"]) - timing.send_lead_s(self.slot_seconds)
        return self.runner.clock.slot_of(clock["running_slot"]), left


@pytest.fixture
def live(
    tmp_path: Path, dash_duo, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Live]:
    """The exchange closes a slot every ``SLOT_SECONDS``, or every ``request.param`` seconds when
    the test asks (``@pytest.mark.parametrize("live", [4.0], indirect=True)``). A dict param
    ``{"slot_seconds": 1.0, "scenario": "default"}`` runs a shipped scenario instead of the
    generated 2 x 3 grid."""
    param = getattr(request, "param", SLOT_SECONDS)
    shipped = param.get("scenario") if isinstance(param, dict) else None
    slot_seconds = float(param.get("slot_seconds", SLOT_SECONDS) if isinstance(param, dict) else param)
    monkeypatch.setattr(OperatorAgent, "long_poll_s", AGENT_LONG_POLL_S)
    with contextlib.ExitStack() as cleanup:  # undone in reverse order, also when setting up fails
        scenario = (
            load_scenario(ROOT / "scenarios" / f"{shipped}.yaml")
            if shipped
            else generate_scenario(2, 3, seed=1)
        )
        store = ExchangeStore.open(
            f"sqlite:///{tmp_path / 'exchange.sqlite3'}", scenario, build_grid(scenario)
        )
        cleanup.callback(store.engine.dispose)
        settings = Settings.from_env(
            {"INSTANCE_DIR": str(tmp_path), "SECRET_KEY": "t", "SLOT_SECONDS": str(slot_seconds)}
        )
        server = create_app(settings, store=store)
        serving = Serving(server)
        serving.start()
        cleanup.callback(serving.stop)

        runner = ExchangeRunner(store, slot_seconds)
        runner.resume()
        runner_stop, agent_stop = threading.Event(), threading.Event()
        # the agent first: it waits for the first cycle, so the history store gets every slot
        agent_thread = start_agent(settings, store.engine, server, agent_stop)
        assert agent_thread is not None, "the operator agent did not start"
        runner_thread = threading.Thread(
            target=runner.run, kwargs={"stop": runner_stop}, name="exchange-runner", daemon=True
        )
        runner_thread.start()
        # the agent stops first: its long-poll returns at the next slot while the runner runs
        cleanup.callback(_stop, runner_thread, runner_stop, "the runner")
        cleanup.callback(_stop, agent_thread, agent_stop, "the operator agent")

        url = f"http://127.0.0.1:{serving.port}"
        dash_duo._url = url  # the base URL without navigating (the public setter waits for Dash)
        cleanup.callback(dash_duo.driver.get, "about:blank")  # no more callbacks from the page
        yield Live(url, store, runner, server, settings, slot_seconds, serving)


class Serving:
    """The console's HTTP server in a thread; stopped and started again on the same port."""

    def __init__(self, app: Flask):
        self.app = app
        self.port = 0
        self.http: BaseWSGIServer | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.http = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self.port = self.http.server_port
        self.thread = threading.Thread(target=self.http.serve_forever, name="console-http", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.http is not None and self.thread is not None:
            _shut_down(self.http, self.thread)
        self.http = self.thread = None


def _stop(thread: threading.Thread, stop: threading.Event, what: str) -> None:
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive(), f"{what} did not stop"


def _shut_down(http: BaseWSGIServer, thread: threading.Thread) -> None:
    http.shutdown()
    http.server_close()
    thread.join(timeout=10)
