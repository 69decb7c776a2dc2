"""Engines and migrations.

SQLite (the default) runs in WAL mode so that readers never wait for the runner, and every
transaction starts with ``BEGIN IMMEDIATE``: writers queue up instead of failing half-way, which
is what orders "fee accepted" against "slot opened" when several processes share the file.
PostgreSQL orders them with ``SELECT ... FOR UPDATE`` on the exchange's state row.

Reads that never write use ``reader(engine)``: on SQLite their transactions start with a plain
``BEGIN`` (a WAL snapshot, taken without the write lock), so an API read does not queue behind
the runner's slot or another worker's fees; elsewhere it is the engine itself.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event

from app.config import ROOT


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            # a checkpoint every ~40 MB of WAL rather than 4 MB: the runner writes ~0.5 MB a slot
            # at 10,000 houses, and each checkpoint syncs the file (what is durable is unchanged)
            cur.execute("PRAGMA wal_autocheckpoint=10000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            read_only = conn.get_execution_options().get(READ_ONLY, False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


READ_ONLY = "gridfee_read_only"


def reader(engine: Engine) -> Engine:
    """``engine`` for transactions that only read (same pool): on SQLite they take no write lock.

    A transaction of it must not write: on SQLite a write in it could fail with "database is
    locked" instead of waiting its turn.
    """
    if engine.dialect.name != "sqlite":
        return engine
    return engine.execution_options(**{READ_ONLY: True})


def alembic_config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (idempotent)."""

    command.upgrade(alembic_config(url), "head")


class NotMigrated(RuntimeError):
    """The database is not at the newest schema: run the migrations (Procfile ``release:``)."""


def check_migrated(engine: Engine) -> None:
    """Raise ``NotMigrated`` unless the database's Alembic revision is the newest one.

    For processes that must not migrate (the web workers and the clock on a PaaS, where the
    ``release:`` phase runs ``alembic upgrade head`` once before they start).
    """

    heads = set(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    if current != heads:
        where = engine.url.render_as_string(hide_password=True)
        found = ", ".join(sorted(current)) or "none"
        raise NotMigrated(
            f"the database {where} is at schema revision {found}, not {', '.join(sorted(heads))}: "
            "run 'alembic upgrade head' (the Procfile's release: step) first"
        )
