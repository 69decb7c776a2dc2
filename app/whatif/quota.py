"""Who runs What-if runs now: a ledger that caps them per user and in all.

A What-if run takes every core of the machine that runs it, so the console lets a user have at
most ``WHATIF_RUNS_PER_USER`` runs queued or running, and everybody together
``WHATIF_RUNS_AT_ONCE``. A run is claimed in the request that starts its job (the background
callback's first request, ``app.console.pages.whatif``), and released when its job ends (whatever the
outcome), when it is cancelled, or, for a job that died without saying so, ``STALE_S`` after it
started. The ledger lives where the runs' results do (``ResultStore``): in Redis with
``REDIS_URL`` (every web worker and the Celery worker see it), else in a diskcache under the
instance dir (the web server and its job processes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TypeVar

import diskcache

from app.whatif.shared import SharedPlace

T = TypeVar("T")

STALE_S = 3600.0  # a run still claimed after this long died without releasing its claim
REDIS_KEY = "gridfee:whatif:running"


class RunRefused(Exception):
    """A run that may not start now; the message says why (shown to the user, a 429's reason)."""


class RunLedger(SharedPlace):
    """The runs claimed and not released, beside the results (:class:`SharedPlace`)."""

    FOLDER = "ledger"
    SOCKET_TIMEOUT_S = 10.0

    # -- storage: a dict run id -> [user, started], read and written under a lock ----------------
    def _change(self, fn: Callable[[dict], T]) -> T:
        """Apply ``fn(runs) -> result`` to the live (not stale) runs under the ledger's lock."""
        now = time.time()
        if self.redis_url:
            client = self._redis()
            try:
                with client.lock(f"{REDIS_KEY}:lock", timeout=10, blocking_timeout=10):
                    raw = client.hgetall(REDIS_KEY)
                    runs = {k.decode(): json.loads(v) for k, v in raw.items()}
                    runs = {k: v for k, v in runs.items() if now - v[1] < STALE_S}
                    before = dict(runs)
                    result = fn(runs)
                    if runs != before or len(raw) != len(runs):
                        pipe = client.pipeline()
                        pipe.delete(REDIS_KEY)
                        if runs:
                            pipe.hset(REDIS_KEY, mapping={k: json.dumps(v) for k, v in runs.items()})
                        pipe.execute()
                    return result
            finally:
                client.close()
        folder = self._folder()
        folder.mkdir(parents=True, exist_ok=True)
        with diskcache.Cache(str(folder)) as cache, cache.transact():
            runs = {k: v for k, v in (cache.get("running") or {}).items() if now - v[1] < STALE_S}
            result = fn(runs)
            cache.set("running", runs)
            return result

    def running(self) -> dict[str, tuple[str, float]]:
        """Run id -> (user, started) of every run claimed and not released."""
        return self._change(lambda runs: {k: (v[0], v[1]) for k, v in runs.items()})

    def claim(self, run_id: str, user: str, per_user: int, at_once: int) -> None:
        """Count ``run_id`` as ``user``'s, or raise ``RunRefused`` saying why it may not start."""

        def claim(runs: dict) -> None:
            if run_id in runs:
                raise RunRefused("this What-if run has started already")
            mine = sum(1 for who, _ in runs.values() if who == user)
            if mine >= per_user:
                raise RunRefused(
                    f"you have {mine} What-if run(s) going, the most one user may (WHATIF_RUNS_PER_USER = "
                    f"{per_user}); wait for it to finish or cancel it"
                )
            if len(runs) >= at_once:
                raise RunRefused(
                    f"{len(runs)} What-if runs are going, the most at once (WHATIF_RUNS_AT_ONCE = "
                    f"{at_once}); try again when one has finished"
                )
            runs[run_id] = [user, time.time()]

        self._change(claim)

    def release(self, run_id: object, user: str | None = None) -> bool:
        """Forget ``run_id`` (only if it is ``user``'s, when given); whether it was claimed."""

        def release(runs: dict) -> bool:
            if not isinstance(run_id, str) or run_id not in runs:
                return False
            if user is not None and runs[run_id][0] != user:
                return False
            del runs[run_id]
            return True

        return self._change(release)
