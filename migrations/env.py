"""Alembic environment: the database URL comes from app.config (DATABASE_URL) unless set."""

from alembic import context
from app.config import Settings
from app.store.db import make_engine
from app.store.schema import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")
if not url or url == "sqlite:///instance/gridfee.sqlite3":
    url = Settings.from_env().database_url


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
