"""Notifications that something was written to the store: wake the readers instead of polling.

One interface, three backends chosen from the deployment (``Notifier.for_store``):

- PostgreSQL store: ``LISTEN/NOTIFY`` on the store's own database (psycopg's ``notifies()``);
- otherwise, with ``REDIS_URL``: Redis pub/sub (redis-py's ``PubSub``);
- otherwise (SQLite alone): polling, every ``poll_s`` seconds; a publish still wakes at once the
  readers of the same ``Notifier`` in the same process (the runner and the web server of
  ``python -m app``, the console's readers of an in-process cache), which need no server.

A writer calls ``publish(channel, payload)`` *after* its durable write committed. A reader
subscribes first, then reads the durable record (the store's state, the outbox), and only when it
found nothing new waits (``Subscription.wait``) and reads again::

    with notifier.subscribe(channel) as sub:
        while not (found := read()):
            sub.wait(remaining)

The notification carries no data a reader relies on: it only says "read again". So a lost one (a
publish that failed, a listener reconnecting, a message dropped by Redis) only delays a reader, by
at most ``reread_s``, the interval at which readers re-read anyway; none is ever lost, because
the durable record is the store. A wake-up for nothing costs one read.

Safe with several gunicorn workers and with the separate runner process: every process listens on
its own connection (one per ``Notifier`` per process, shared by all the threads of the process
that wait), and the only state is that process's table of waiting subscriptions. There is no
module-level mutable state; a ``Notifier`` notices a fork (the pid changed) and starts a listener
of its own in the child instead of using the parent's thread, which did not survive the fork. The
listener runs only while some thread waits (it stops ``LINGER_S`` after the last one left), and
after every (re)connection it wakes every waiting reader, since a notification sent while it was
not listening would otherwise be missed until the next re-read.

Every logical channel goes over one server channel (``SERVER_CHANNEL``), the logical name in the
message: a worker thus listens on one connection without a ``LISTEN`` per websocket, and a reader
woken by another deployment sharing the Redis only reads once more.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from types import TracebackType

import psycopg
import redis
from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

SERVER_CHANNEL = "gridfee_events"  # the PostgreSQL channel / Redis channel every message goes over
LISTENER_NAME = "gridfee-notify"  # a PostgreSQL listener's application_name (pg_stat_activity)
POLL_S = 0.1  # SQLite alone: how often a waiting reader reads the store again
REREAD_S = 5.0  # with notifications: how often a reader re-reads anyway (a lost notification)
LINGER_S = 30.0  # a listener with nobody waiting stops after this long
RECONNECT_S = (0.5, 10.0)  # a listener that lost its connection retries after 0.5 s, doubling to 10 s
TICK_S = 1.0  # how often a listener looks whether it should stop
HEARTBEAT_S = 10.0  # how often a PostgreSQL listener checks its connection (Redis: health checks)
PUBLISH_PAUSE_S = 5.0  # after a failed publish, none is tried for this long


def cycles_channel(scenario_key: str) -> str:
    """The channel on which a closed slot of exchange ``scenario_key`` is announced."""
    return f"cycles:{scenario_key}"


class Subscription:
    """A reader's interest in some channels, from ``Notifier.subscribe`` until ``close``.

    ``event`` is what a notification sets; pass one that something else sets too (a websocket's,
    set when its client sends or leaves) and ``wait`` also wakes on that.
    """

    def __init__(
        self,
        notifier: Notifier,
        channels: tuple[str, ...],
        event: threading.Event | None,
        poll_s: float | None = None,
    ):
        self.notifier = notifier
        self.channels = channels
        self.event = event or threading.Event()
        self.poll_s = notifier.poll_s if poll_s is None else poll_s
        self._hub: _Hub | None = notifier._hub()
        self._hub.add(self)

    @property
    def interval(self) -> float:
        """How long a ``wait`` lasts at most now: ``reread_s`` while notifications flow, else
        ``poll_s`` (polling, or the listener not connected yet or any more)."""
        listening = self._hub is not None and self._hub.listening
        return self.notifier.reread_s if listening else self.poll_s

    def wait(self, timeout: float) -> bool:
        """Wait until a notification on one of the channels (True) or ``timeout`` (False), at most
        ``interval``, so that the caller reads the durable record again at that pace whatever
        happens to notifications."""
        woke = self.event.wait(max(0.0, min(timeout, self.interval)))
        self.event.clear()  # before the caller's read: a notification after it wakes the next wait
        return woke

    def close(self) -> None:
        if self._hub is not None:
            self._hub.remove(self)
            self._hub = None

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Notifier:
    """Publish "channel changed" after a durable write; wait for it without polling the store.

    ``backend`` is ``"postgresql"`` (``engine``'s database), ``"redis"`` (``redis_url``) or
    ``"polling"``. ``poll_s``: how often readers re-read when polling; ``reread_s``: how often
    they re-read anyway when notifications flow.
    """

    def __init__(
        self,
        backend: str,
        engine: Engine | None = None,
        redis_url: str | None = None,
        poll_s: float = POLL_S,
        reread_s: float = REREAD_S,
    ):
        if backend not in ("postgresql", "redis", "polling"):
            raise ValueError(f"unknown notification backend {backend!r}")
        if backend == "postgresql" and engine is None:
            raise ValueError("the postgresql backend needs the store's engine")
        if backend == "redis" and not redis_url:
            raise ValueError("the redis backend needs a redis_url")
        self.backend = backend
        self.engine = engine
        self.redis_url = redis_url
        self.poll_s = poll_s
        self.reread_s = reread_s
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._hubs: dict[int, _Hub] = {}  # by process id: a forked child starts its own
        self._paused_until = 0.0  # publishing is paused after a failure, until then (monotonic)
        self._redis: redis.Redis | None = None  # the publishing client (redis-py's pool is fork-safe)

    @classmethod
    def for_store(cls, engine: Engine, redis_url: str | None = None, **intervals: float) -> Notifier:
        """PostgreSQL's LISTEN/NOTIFY for a PostgreSQL store, else Redis with ``redis_url``, else
        polling. Every process of a deployment (web workers, runner) must get the same answer,
        which they do from the same ``DATABASE_URL`` and ``REDIS_URL``."""
        if engine.dialect.name == "postgresql":
            return cls("postgresql", engine=engine, **intervals)
        if redis_url:
            return cls("redis", redis_url=redis_url, **intervals)
        return cls("polling", **intervals)

    @classmethod
    def for_cache(cls, redis_url: str | None, **intervals: float) -> Notifier:
        """For readers of the server's cache (``app.console.cache``): Redis pub/sub when the cache
        is Redis (shared by every worker), else in-process (the cache is one dict per process)."""
        return cls("redis", redis_url=redis_url, **intervals) if redis_url else cls("polling", **intervals)

    # -- writers --------------------------------------------------------------------------
    def publish(self, channel: str, payload: str = "") -> None:
        """Tell the readers of ``channel`` to read again; call it after the write committed.

        Never raises: a notification that cannot be sent only delays the readers (``reread_s``).
        After a failure none is tried for ``PUBLISH_PAUSE_S``, so that a writer (the runner) does
        not wait for a connection timeout at every write while the server is away.
        """
        message = json.dumps({"channel": channel, "payload": payload})
        if self.backend == "polling":  # no server: the waiters of this process only
            hub = self._hubs.get(os.getpid())
            if hub is not None:
                hub.deliver(message)
            return
        if time.monotonic() < self._paused_until:
            return
        try:
            if self.backend == "postgresql":
                with self.engine.begin() as conn:
                    conn.execute(
                        text("SELECT pg_notify(:server, :message)"),
                        {"server": SERVER_CHANNEL, "message": message},
                    )
            else:
                self._redis_client().publish(SERVER_CHANNEL, message)
        except Exception:  # the write is done; readers find it at their next re-read
            self._paused_until = time.monotonic() + PUBLISH_PAUSE_S
            log.warning(
                "could not publish a notification on %s; readers re-read every %g s, next try in %g s",
                channel,
                self.reread_s,
                PUBLISH_PAUSE_S,
                exc_info=True,
            )

    def _redis_client(self) -> redis.Redis:
        if self._redis is None:
            self._redis = redis.Redis.from_url(self.redis_url, socket_connect_timeout=3.0, socket_timeout=5.0)
        return self._redis

    # -- readers --------------------------------------------------------------------------
    def subscribe(
        self, *channels: str, event: threading.Event | None = None, poll_s: float | None = None
    ) -> Subscription:
        """Start listening on ``channels``; read the durable record after this, then ``wait``.

        ``poll_s``: this reader's polling interval when there are no notifications (default the
        notifier's ``poll_s``), for readers whose reads cost more than others'.
        """
        return Subscription(self, channels, event, poll_s)

    def wait(self, channel: str, timeout: float) -> bool:
        """Wait up to ``timeout`` for one notification on ``channel`` (one-off; a reader that reads
        before waiting should ``subscribe`` first instead, or it may miss the notification)."""
        with self.subscribe(channel) as sub:
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                if sub.wait(left):
                    return True
            return False

    def waiting(self, channel: str) -> int:
        """How many subscriptions of this process wait on ``channel``."""
        hub = self._hubs.get(os.getpid())
        if hub is None:
            return 0
        with hub.lock:
            return len(hub.subs.get(channel, ()))

    @property
    def listening(self) -> bool:
        """This process's listener is connected (always False when polling)."""
        hub = self._hubs.get(os.getpid())
        return hub is not None and hub.listening

    def _hub(self) -> _Hub:
        pid = os.getpid()
        if pid not in self._hubs and self._pid != pid:  # a forked child (one thread as yet):
            self._pid, self._lock = pid, threading.Lock()  # the parent's lock may have been held
        with self._lock:
            hub = self._hubs.get(pid)
            if hub is None:
                self._hubs = {pid: _Hub(self)}  # a parent's hub is no use in a forked child
                hub = self._hubs[pid]
            return hub

    def close(self) -> None:
        """Stop this process's listener (it also stops by itself once nobody waits)."""
        hub = self._hubs.get(os.getpid())
        if hub is not None:
            hub.stop()
        if self._redis is not None:
            self._redis.close()
            self._redis = None


class _Hub:
    """One process's listener of one ``Notifier``: a thread on one connection, waking the
    subscriptions of the channels it hears about (no thread when polling)."""

    def __init__(self, notifier: Notifier):
        self.notifier = notifier
        self.lock = threading.Lock()
        self.subs: dict[str, set[Subscription]] = {}
        self.thread: threading.Thread | None = None
        self.listening = False
        self.idle_since = time.monotonic()
        self.stopping = threading.Event()
        self.backoff = RECONNECT_S[0]  # before the next reconnection

    def add(self, sub: Subscription) -> None:
        with self.lock:
            for channel in sub.channels:
                self.subs.setdefault(channel, set()).add(sub)
            if self.thread is None and self.notifier.backend != "polling":
                self.stopping.clear()
                self.thread = threading.Thread(
                    target=self._run, name=f"notify-{self.notifier.backend}", daemon=True
                )
                self.thread.start()

    def remove(self, sub: Subscription) -> None:
        with self.lock:
            for channel in sub.channels:
                waiting = self.subs.get(channel)
                if waiting is not None:
                    waiting.discard(sub)
                    if not waiting:
                        del self.subs[channel]
            if not self.subs:
                self.idle_since = time.monotonic()

    def stop(self) -> None:
        self.stopping.set()
        thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    def _should_end(self) -> bool:
        """True (and the thread given up) when stopping, or nobody waited for ``LINGER_S``."""
        with self.lock:
            idle = not self.subs and time.monotonic() - self.idle_since >= LINGER_S
            if self.stopping.is_set() or idle:
                self.thread = None
                self.listening = False
                return True
            return False

    def deliver(self, message: str) -> None:
        try:
            channel = json.loads(message)["channel"]
        except (ValueError, KeyError, TypeError):
            return
        with self.lock:
            waiting = list(self.subs.get(channel, ()))
        for sub in waiting:
            sub.event.set()

    def _connected(self) -> None:
        """Listening (again): wake everyone, a notification may have gone by meanwhile."""
        self.backoff = RECONNECT_S[0]
        with self.lock:
            self.listening = True
            waiting = {sub for subs in self.subs.values() for sub in subs}
        for sub in waiting:
            sub.event.set()

    def _run(self) -> None:
        listen = self._listen_postgresql if self.notifier.backend == "postgresql" else self._listen_redis
        while not self._should_end():
            try:
                listen()  # returns when the listener should end (and gave its thread up)
                return
            except Exception:
                with self.lock:
                    self.listening = False
                    if not self.subs:  # nobody waits: the next subscription connects again
                        self.thread = None
                        return
                log.warning(
                    "notification listener (%s) lost its connection; readers poll every %g s meanwhile",
                    self.notifier.backend,
                    self.notifier.poll_s,
                    exc_info=True,
                )
                self.stopping.wait(self.backoff)
                self.backoff = min(self.backoff * 2, RECONNECT_S[1])

    def _listen_postgresql(self) -> None:
        url = self.notifier.engine.url.set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True, application_name=LISTENER_NAME) as conn:
            conn.execute(f"LISTEN {SERVER_CHANNEL}")
            self._connected()
            checked = time.monotonic()
            while not self._should_end():
                for note in conn.notifies(timeout=TICK_S):
                    self.deliver(note.payload)
                if time.monotonic() - checked >= HEARTBEAT_S:
                    conn.execute("SELECT 1")  # a dead connection raises here, and we reconnect
                    checked = time.monotonic()

    def _listen_redis(self) -> None:
        client = redis.Redis.from_url(
            self.notifier.redis_url,
            socket_connect_timeout=3.0,
            socket_timeout=TICK_S * 10,
            health_check_interval=10,
        )
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(SERVER_CHANNEL)
            while not self._should_end():
                message = pubsub.get_message(timeout=TICK_S)
                if message is None:
                    continue
                if message["type"] == "subscribe":  # (re)subscribed: redis-py reconnects by itself
                    self._connected()
                elif message["type"] == "message":
                    data = message["data"]
                    self.deliver(data.decode() if isinstance(data, bytes) else data)
        finally:
            pubsub.close()
            client.close()
