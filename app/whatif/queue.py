"""The what-if's job queue when ``REDIS_URL`` is set: Celery over Redis (no Dash pages here).

Without ``REDIS_URL`` the what-if runs are processes of the web server's machine
(``app.console.pages.whatif.background_manager``: a diskcache manager). With it they are Celery tasks:
the web process queues them in Redis through Dash's ``CeleryManager`` and a separate worker
process takes them, ``celery -A app.entry.worker worker`` (the Procfile's ``worker:``), so any web
dyno can start a run and any worker dyno can run it.

* ``make_celery`` configures the Celery app both sides use: JSON messages, one queue of its own
  (``whatif``), results and progress in the same Redis, short connect timeouts (a Redis that does
  not answer is an error within seconds, never a hang), one task per worker process at a time.
* ``WhatIfCeleryManager`` is Dash's ``CeleryManager`` with three additions on the worker's side:
  the job gets the worker's job context (its instance dir, Redis and live scenario: what
  ``app.console.pages.whatif`` calls the job context); it may start worker processes for the candidates
  although a prefork pool process is a daemon (``_may_start_processes``), so one run uses the
  cores as it does without Celery; and "Cancel" (Dash revokes the task with SIGTERM) raises
  ``Cancelled`` in the job, so that ``app.whatif.run_whatif`` stops those processes before the
  task ends instead of leaving them to finish their days.
* ``queue_problem`` says, before a run is queued, why it could not start (Redis does not answer,
  no worker is running), so the page says so instead of showing a run that nobody takes.

The Celery task of a background callback is named by Dash after a hash of the callback's code and
outputs: the worker finds it only if it registers the same callbacks, which is why
``app.entry.worker`` builds the whole app (``create_app``) as the web process does.
"""

from __future__ import annotations

import functools
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

from app.operator.backtest import Cancelled

if TYPE_CHECKING:
    from celery import Celery
    from dash import CeleryManager

__all__ = [
    "current_job",
    "run_in_job_context",
    "QUEUE",
    "celery_manager",
    "check_redis_url",
    "make_celery",
    "queue_problem",
    "redis_problem",
    "safe_url",
]

_JOB: ContextVar[Mapping[str, Any]] = ContextVar("whatif_job")
"""The running job's context (instance dir, Redis, the live scenario), set by the managers."""


def current_job() -> Mapping[str, Any]:
    """The context the manager gave the job running in this process (``LookupError`` outside one)."""
    return _JOB.get()


def run_in_job_context(job_context: Mapping[str, Any], job_fn: Callable, *args: object) -> object:
    """Run Dash's ``job_fn`` with ``job_context`` as the job's context (a fork server's target:
    module-level, so it is pickled by name)."""
    _JOB.set(job_context)
    return job_fn(*args)


QUEUE = "whatif"
CONNECT_TIMEOUT_S = 3.0
RESULT_EXPIRES_S = 24 * 3600


def safe_url(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def check_redis_url(redis_url: str) -> str:
    """``redis_url`` if it is a ``redis://`` or ``rediss://`` URL, else ``ValueError``."""
    if urlsplit(redis_url).scheme not in ("redis", "rediss"):
        raise ValueError(f"REDIS_URL {safe_url(redis_url)!r} is not a redis:// or rediss:// URL")
    return redis_url


def make_celery(redis_url: str) -> Celery:
    """The Celery app of the what-if runs: broker and result backend ``redis_url``."""
    from celery import Celery

    check_redis_url(redis_url)
    app = Celery("gridfee-whatif", broker=redis_url, backend=redis_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=QUEUE,
        task_track_started=True,
        result_expires=RESULT_EXPIRES_S,
        # a run takes minutes: a worker process takes the next one only when it is free
        worker_prefetch_multiplier=1,
        # a Redis that does not answer is an error within seconds (queueing a run, Dash's polls)
        broker_connection_timeout=CONNECT_TIMEOUT_S,
        broker_transport_options={"socket_connect_timeout": CONNECT_TIMEOUT_S},
        redis_socket_connect_timeout=CONNECT_TIMEOUT_S,
        redis_socket_timeout=30.0,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5},
        # the worker: reconnect after a Redis restart, but not forever at start-up
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=10,
        worker_send_task_events=False,
        # no pool of broker connections: a connection per use, closed after it. A pooled one
        # may still be polling (for the replies of a PING, say), and a process forked from this
        # one (the what-if's candidate workers) would wait for that poll forever when kombu
        # closes the inherited pool after the fork
        broker_pool_limit=0,
    )
    return app


def redis_problem(redis_url: str, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """Why Redis at ``redis_url`` cannot be used (one line), or None when it answers PING."""
    import redis

    try:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=timeout, socket_timeout=timeout)
    except ValueError as exc:  # not a Redis URL
        return f"REDIS_URL {safe_url(redis_url)!r} is not a Redis URL: {exc}"
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"Redis at {safe_url(redis_url)} (REDIS_URL) does not answer: {exc}"
    finally:
        client.close()
    return None


def queue_problem(celery: Celery, timeout: float = 1.0) -> str | None:
    """Why a run queued now would not start (one line), or None: Redis answers and a worker too.

    Asks the workers for a PING and waits at most ``timeout`` seconds for the first answer. A
    worker answers while its processes run other what-ifs (its main process does), so a busy
    worker is not mistaken for a missing one; the run then waits in the queue for a free process.
    """
    problem = redis_problem(celery.conf.broker_url)
    if problem:
        return problem
    try:
        replies = celery.control.ping(timeout=timeout, limit=1)
    except Exception as exc:  # kombu's errors: the broker went away in between
        return f"the what-if queue in Redis cannot be used: {type(exc).__name__}: {exc}"
    if not replies:
        return (
            "no what-if worker is running (the Procfile's worker: process, "
            "celery -A app.entry.worker worker); start one and run again"
        )
    return None


@contextmanager
def _cancel_on_sigterm() -> Iterator[None]:
    """SIGTERM (Dash's cancel: Celery revokes the task with it) raises ``Cancelled`` meanwhile.

    Only in the main thread (a prefork worker process runs its task there); elsewhere nothing
    changes and SIGTERM ends the process as before.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(_signum: int, _frame: FrameType | None) -> NoReturn:
        raise Cancelled("cancelled (or the worker is shutting down)")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _may_start_processes() -> Iterator[None]:
    """Let the job start the candidates' worker processes in a prefork pool process.

    Celery's pool processes are daemons, and a daemon may not start processes: it would be
    ended abruptly and leave them behind. A what-if job ends its workers itself (on cancel and
    on SIGTERM, see ``_cancel_on_sigterm``), and each of them is killed with it if it is killed
    (``app.whatif._die_with``), so meanwhile this process is not marked as a daemon.
    """
    import multiprocessing

    config = multiprocessing.current_process()._config
    had, daemon = "daemon" in config, config.get("daemon")
    config["daemon"] = False
    try:
        yield
    finally:
        if had:
            config["daemon"] = daemon
        else:
            config.pop("daemon", None)


def celery_manager(
    celery: Celery, job_context: Mapping[str, Any], expire: int | None = None
) -> CeleryManager:
    """Dash's ``CeleryManager`` on ``celery`` whose jobs get ``job_context`` (see the module)."""
    from dash import CeleryManager

    class WhatIfCeleryManager(CeleryManager):
        def __init__(self, handle: Celery, context: Mapping[str, Any], expire: int | None):
            # before CeleryManager.__init__: it registers the callbacks known so far (make_job_fn)
            self.job_context = dict(context)
            super().__init__(handle, expire=expire)

        def make_job_fn(self, fn: Callable, progress: bool, key: str | None = None) -> Callable:
            job_context = self.job_context

            @functools.wraps(fn)
            def job(*args: object, **kwargs: object) -> object:
                # runs in the worker: its own context (the web's came as JSON, without it)
                _JOB.set(job_context)
                with _cancel_on_sigterm(), _may_start_processes():
                    return fn(*args, **kwargs)

            return super().make_job_fn(job, progress, key)

    return WhatIfCeleryManager(celery, job_context, expire)
