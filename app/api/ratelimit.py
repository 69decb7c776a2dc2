"""A per-client sliding-window rate limit, counted in the shared cache (Redis when ``REDIS_URL``).

The counts live in the cache, not in the process: with several web workers (and dynos) every
worker sees the same counts when the cache is Redis. With the in-process ``SimpleCache`` each
worker counts alone, so the limit is per worker (good enough for one local process).

The window slides by weighting the previous fixed window: with ``limit`` requests per
``window_s`` seconds, a request at fraction ``f`` of the current window counts
``previous * (1 - f) + current`` requests, the usual two-counter approximation (two cache keys
per client, each expiring after two windows). A refused request counts too, so a client that
keeps hammering stays refused.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from flask_caching import Cache


@dataclass
class RateLimit:
    cache: Cache
    name: str
    limit: int
    window_s: float = 60.0

    def _key(self, client: str, window: int) -> str:
        return f"ratelimit:{self.name}:{client}:{window}"

    def hit(self, client: str, now: float | None = None) -> float | None:
        """Count one request of ``client``; None when allowed, else seconds to wait before retrying.

        A limit of 0 or less turns the limit off.
        """
        if self.limit <= 0:
            return None
        now = time.time() if now is None else now
        window = int(now // self.window_s)
        into = now / self.window_s - window  # fraction of the current window gone, [0, 1)
        key = self._key(client, window)
        ttl = math.ceil(2 * self.window_s) + 1
        backend = self.cache.cache  # the cachelib backend (flask-caching's Cache has no inc)
        backend.add(key, 0, timeout=ttl)  # set with its expiry only if absent (Redis: SET NX EX)
        current = backend.inc(key) or 1  # atomic on Redis (INCR keeps the expiry)
        previous = int(backend.get(self._key(client, window - 1)) or 0)
        count = previous * (1.0 - into) + current
        if count <= self.limit:
            return None
        if current > self.limit:  # over on this window alone: wait for the next one
            return max((1.0 - into) * self.window_s, 1.0)
        # over because of the previous window's weight: wait until enough of it has slid out
        need = (count - self.limit) / previous  # fraction of the window that must pass
        return max(min(need, 1.0 - into) * self.window_s, 1.0)
