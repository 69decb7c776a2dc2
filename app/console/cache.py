"""The server's cache (flask-caching): Redis when ``REDIS_URL`` is set, else in-process.

``SimpleCache`` is a dict per process: each gunicorn worker then caches (and rate-limits) on its
own, which is correct but multiplies the exchange reads by the workers. With Redis every worker
and dyno shares one cache.
"""

from __future__ import annotations

from app.config import Settings


def cache_config(settings: Settings) -> dict:
    if settings.redis_url:
        return {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": settings.redis_url, "CACHE_KEY_PREFIX": "gfc:"}
    return {"CACHE_TYPE": "SimpleCache", "CACHE_THRESHOLD": 2000}
