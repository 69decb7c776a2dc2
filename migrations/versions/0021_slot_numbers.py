"""The operator's slot columns hold slot numbers (minutes since 2000-01-01), not labels."""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0021", "0020"

# Every slot-label column of the operator's tables: (table, column, nullable)
COLUMNS = (
    ("op_history", "slot", False),
    ("fee_commands", "running_slot", True),
    ("fee_commands", "applies_from_slot", True),
    ("alerts", "started_slot", True),
    ("alerts", "firing_slot", True),
    ("alerts", "resolved_slot", True),
)

# The numbering of app.slots.minutes (label "YYYY-MM-DDTHH:mm" <-> minutes from 2000-01-01T00:00),
# spelled here in SQL because a migration must not import app code: the app's rule may change
# later, what this revision wrote may not. One statement per table and backend converts every
# row in the database (op_history can hold hundreds of thousands), no row through Python.
EPOCH_UNIX = 946684800  # 2000-01-01T00:00 in unix seconds (the labels are read as UTC: no zone)
PG_NUMBER = (
    "CAST(ROUND(EXTRACT(EPOCH FROM (CAST({c} AS TIMESTAMP) - TIMESTAMP '2000-01-01 00:00')) / 60) AS INTEGER)"
)
PG_LABEL = "to_char(TIMESTAMP '2000-01-01 00:00' + {c} * INTERVAL '1 minute', 'YYYY-MM-DD\"T\"HH24:MI')"
SQLITE_NUMBER = f"(CAST(strftime('%s', {{c}}) AS INTEGER) - {EPOCH_UNIX}) / 60"
SQLITE_LABEL = f"strftime('%Y-%m-%dT%H:%M', CAST({{c}} AS INTEGER) * 60 + {EPOCH_UNIX}, 'unixepoch')"


LABEL, NUMBER = sa.String(length=16), sa.Integer()


def _convert(to_numbers: bool) -> None:
    new, old = (NUMBER, LABEL) if to_numbers else (LABEL, NUMBER)
    if op.get_bind().dialect.name == "postgresql":
        # ALTER ... TYPE ... USING rewrites the table, its keys and indexes with it
        for table, column, nullable in COLUMNS:
            using = (PG_NUMBER if to_numbers else PG_LABEL).format(c=column)
            op.alter_column(
                table,
                column,
                type_=new,
                existing_type=old,
                existing_nullable=nullable,
                postgresql_using=using,
            )
        return
    # SQLite: one UPDATE per table converts the values in place (a column holds either), the batch
    # rebuild of the table changes the columns' type and copies the values with a CAST
    tables: dict[str, list[tuple[str, bool]]] = {}
    for table, column, nullable in COLUMNS:
        tables.setdefault(table, []).append((column, nullable))
    for table, columns in tables.items():
        expression = SQLITE_NUMBER if to_numbers else SQLITE_LABEL
        update = f"UPDATE {table} SET " + ", ".join(f"{c} = {expression.format(c=c)}" for c, _ in columns)
        if to_numbers:
            op.execute(update)
        with op.batch_alter_table(table) as batch_op:
            for column, nullable in columns:
                batch_op.alter_column(column, type_=new, existing_type=old, existing_nullable=nullable)
        if not to_numbers:
            op.execute(update)


def upgrade() -> None:
    _convert(to_numbers=True)


def downgrade() -> None:
    _convert(to_numbers=False)
