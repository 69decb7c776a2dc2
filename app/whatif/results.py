"""Where What-if results are kept for a day, keyed by a random run id the page holds: the charts
of another market, the Excel export and "Apply to live" read a run from here, so nothing large
travels between the browser and the server."""

from __future__ import annotations

import pickle
import re

import diskcache
import redis

from app.whatif.runs import WhatIfResult
from app.whatif.shared import SharedPlace

RESULT_TTL_S = 24 * 3600
_RENAMED_SERIES = {"market_fee": "fee_ct_per_kwh", "next_market_fee": "next_fee_ct_per_kwh"}  # old -> new
RUN_ID = re.compile(r"[0-9a-f]{32}")
"""A run id: 32 hex digits (``uuid4().hex``), made by the server when it accepts a run."""


class ResultStore(SharedPlace):
    """Where the runs' results are kept for a day (``RESULT_TTL_S``), keyed by run id.

    With ``redis_url`` in Redis (pickled, under ``gridfee:whatif:<run id>``), which the web
    processes and the Celery worker share; else a diskcache under ``instance_dir``, which the
    web server and its job processes share (one machine).
    """

    FOLDER = "results"

    def _diskcache(self) -> diskcache.Cache:
        return diskcache.Cache(str(self._folder()))

    def save(self, run_id: str, result: WhatIfResult, spec: dict) -> None:
        stored = {"result": result, "spec": spec}
        if self.redis_url:
            client = self._redis()
            try:
                client.set(f"gridfee:whatif:{run_id}", pickle.dumps(stored, protocol=5), ex=RESULT_TTL_S)
            finally:
                client.close()
            return
        with self._diskcache() as cache:
            cache.set(run_id, stored, expire=RESULT_TTL_S)

    def load(self, run_id: object) -> tuple[WhatIfResult, dict]:
        """The stored run; ``ValueError`` when the id is not one or the run is gone (a day later)."""
        if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
            raise ValueError("no what-if run to use: run one first")
        if self.redis_url:
            client = self._redis()
            try:
                raw = client.get(f"gridfee:whatif:{run_id}")
            except redis.RedisError as exc:
                raise ValueError(f"the what-if results in Redis cannot be read: {exc}") from None
            finally:
                client.close()
            # written by this app's own processes into its own Redis, as Celery's results are
            stored = None if raw is None else pickle.loads(raw)
        else:
            with self._diskcache() as cache:
                stored = cache.get(run_id)
        if stored is None:
            raise ValueError("this what-if run is no longer stored: run it again")
        for run in stored["result"].runs.values():  # a run stored before the fee's series were renamed
            for old, new in _RENAMED_SERIES.items():
                if old in run.series:
                    run.series[new] = run.series.pop(old)
        return stored["result"], stored["spec"]
