"""Alembic environment: the database URL is DATABASE_URL (as app.config reads it) unless set."""

import os
from pathlib import Path

from alembic import context

from app.config import ROOT, database_url
from app.store.db import make_engine
from app.store.schema import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")
if not url or url == "sqlite:///instance/gridfee.sqlite3":
    # DATABASE_URL as the app reads it (postgres:// rewritten), without needing the other
    # settings: the release phase migrates before SECRET_KEY & co. matter
    instance_dir = Path(os.environ.get("INSTANCE_DIR") or ROOT / "instance")
    url = database_url(os.environ.get("DATABASE_URL"), instance_dir)


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
