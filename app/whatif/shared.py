"""Where What-if keeps what the web processes and the job workers share (results, the run ledger).

In Redis with ``REDIS_URL`` (every web worker and the Celery worker see it), else in a diskcache
under the instance dir (the web server and its job processes, one machine). A place is made from
the app's ``Settings`` or from a job context (a mapping with ``instance_dir`` and ``redis_url``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Self

import redis

from app.config import Settings


class SharedPlace:
    """Redis at ``redis_url`` when given, else the diskcache folder ``instance_dir/whatif/FOLDER``."""

    FOLDER = ""  # the subclass's diskcache folder under instance_dir/whatif
    SOCKET_TIMEOUT_S = 30.0  # the longest one Redis command may take

    def __init__(self, instance_dir: Path | str, redis_url: str | None = None):
        self.instance_dir = Path(instance_dir)
        self.redis_url = redis_url

    @classmethod
    def of(cls, where: Settings | Mapping) -> Self:
        """The place of the app's ``Settings`` or of a job context (a mapping)."""
        if isinstance(where, Mapping):
            return cls(where["instance_dir"], where.get("redis_url"))
        return cls(where.instance_dir, where.redis_url)

    def _redis(self) -> redis.Redis:
        return redis.Redis.from_url(
            self.redis_url, socket_connect_timeout=3.0, socket_timeout=self.SOCKET_TIMEOUT_S
        )

    def _folder(self) -> Path:
        return self.instance_dir / "whatif" / self.FOLDER
