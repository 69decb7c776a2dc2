"""A gunicorn worker forked from a process that already listened gets a listener of its own.

gunicorn may build the app (and its ``Notifier``) before forking its workers; a listener thread
does not survive a fork. Here the parent listens, forks a child, and the child's subscription is
still woken by the parent's publish, through the server (readers re-read only every 60 s).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

import pytest
from sqlalchemy import create_engine

from app.store.notify import Notifier

LONG_S = 60.0


def child(notifier: Notifier, conn: Connection) -> None:
    with notifier.subscribe("orders") as sub:
        deadline = time.monotonic() + 15
        while not notifier.listening and time.monotonic() < deadline:
            time.sleep(0.01)
        conn.send("waiting" if notifier.listening else "not listening")
        conn.send("woken" if sub.wait(30) else "not woken")


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres), "redis"])
def notifier(request: pytest.FixtureRequest, fresh_store_url: Callable[..., str]) -> Notifier:
    if request.param == "redis":
        made = Notifier(
            "redis", redis_url=request.getfixturevalue("redis_url"), poll_s=LONG_S, reread_s=LONG_S
        )
    else:
        engine = create_engine(fresh_store_url("postgresql", "fork"))
        request.addfinalizer(engine.dispose)
        made = Notifier("postgresql", engine=engine, poll_s=LONG_S, reread_s=LONG_S)
    request.addfinalizer(made.close)
    return made


def test_a_forked_worker_is_woken_by_its_own_listener(notifier: Notifier):
    with notifier.subscribe("orders"):  # the parent listens before the fork
        deadline = time.monotonic() + 15
        while not notifier.listening:
            assert time.monotonic() < deadline, "the parent never listened"
            time.sleep(0.01)
        fork = multiprocessing.get_context("fork")
        ours, theirs = fork.Pipe()
        worker = fork.Process(target=child, args=(notifier, theirs), daemon=True)
        worker.start()
        try:
            assert ours.poll(20) and ours.recv() == "waiting"
            notifier.publish("orders", "1")
            assert ours.poll(20) and ours.recv() == "woken"
        finally:
            worker.join(5)
            if worker.is_alive():
                worker.kill()
