"""slot stats packed: one row per slot and chunk of 256 markets (slot_stat_chunks) instead of one
row per market and slot (slot_stats), whose rows it moves

The runner of a 10,000-house grid wrote 10,021 rows per slot; now it writes 40. ``stats`` is
the zstd frame of the chunk's field-major little-endian float64 matrix ``(15, n_markets)``: row
``j`` is ``STAT_FIELDS[j]`` below of each of the chunk's markets in grid order, NaN for NULL (the
format of ``app.store.packed`` when this was written). On PostgreSQL the blob is stored as it is
(``STORAGE EXTERNAL``): it is compressed already.
"""

from itertools import groupby

import numpy as np
import sqlalchemy as sa
import zstandard
from alembic import op

revision = "0018"
down_revision = "0016"

CHUNK = 256  # markets per row (app.store.schema.STAT_CHUNK_MARKETS when this was written)
STAT_FIELDS = (
    "min_trade_rate",
    "median_trade_rate",
    "avg_trade_rate",
    "max_trade_rate",
    "total_traded_energy_kWh",
    "import_kwh",
    "export_kwh",
    "self_sufficiency",
    "self_consumption",
    "market_fee",
    "next_market_fee",
    "market_fee_revenue",
    "unmatched_kwh",
    "consumption_kwh",
    "production_kwh",
)
NULLABLE = {"min_trade_rate", "median_trade_rate", "avg_trade_rate", "max_trade_rate"}
NULLABLE |= {"self_sufficiency", "self_consumption"}
DTYPE = np.dtype("<f8")

metadata = sa.MetaData()
markets = sa.Table(
    "markets",
    metadata,
    sa.Column("uuid", sa.String(36)),
    sa.Column("scenario", sa.String(200)),
    sa.Column("position", sa.Integer),
)
slot_stats = sa.Table(
    "slot_stats",
    metadata,
    sa.Column("market_uuid", sa.String(36)),
    sa.Column("slot", sa.Integer),
    sa.Column("slot_label", sa.String(16)),
    *[sa.Column(name, sa.Float) for name in STAT_FIELDS],
)
chunks = sa.Table(
    "slot_stat_chunks",
    metadata,
    sa.Column("scenario", sa.String(200)),
    sa.Column("slot", sa.Integer),
    sa.Column("chunk", sa.Integer),
    sa.Column("slot_label", sa.String(16)),
    sa.Column("n_markets", sa.Integer),
    sa.Column("stats", sa.LargeBinary),
)


def _create_chunks_table() -> None:
    op.create_table(
        "slot_stat_chunks",
        sa.Column("scenario", sa.String(length=200), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("slot_label", sa.String(length=16), nullable=False),
        sa.Column("n_markets", sa.Integer(), nullable=False),
        sa.Column("stats", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("scenario", "slot", "chunk"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE slot_stat_chunks ALTER COLUMN stats SET STORAGE EXTERNAL")


def _create_rows_table() -> None:
    op.create_table(
        "slot_stats",
        sa.Column("market_uuid", sa.String(length=36), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("slot_label", sa.String(length=16), nullable=False),
        *[sa.Column(name, sa.Float(), nullable=name in NULLABLE) for name in STAT_FIELDS],
        sa.ForeignKeyConstraint(["market_uuid"], ["markets.uuid"]),
        sa.PrimaryKeyConstraint("market_uuid", "slot"),
    )
    with op.batch_alter_table("slot_stats", schema=None) as batch_op:
        batch_op.create_index("ix_slot_stats_slot", ["slot"], unique=False)


def _drop_rows_table() -> None:
    with op.batch_alter_table("slot_stats", schema=None) as batch_op:
        batch_op.drop_index("ix_slot_stats_slot")
    op.drop_table("slot_stats")


def _market_counts(conn) -> dict[str, int]:  # noqa: ANN001
    query = sa.select(markets.c.scenario, sa.func.max(markets.c.position)).group_by(markets.c.scenario)
    return {scenario: int(top) + 1 for scenario, top in conn.execute(query)}


def upgrade() -> None:
    _create_chunks_table()
    conn = op.get_bind()
    compress = zstandard.ZstdCompressor(level=1).compress
    sizes = _market_counts(conn)
    query = (
        sa.select(markets.c.scenario, slot_stats.c.slot, slot_stats.c.slot_label, markets.c.position)
        .add_columns(*[slot_stats.c[name] for name in STAT_FIELDS])
        .join(markets, markets.c.uuid == slot_stats.c.market_uuid)
        .order_by(markets.c.scenario, slot_stats.c.slot, markets.c.position)
    )
    result = conn.execute(query.execution_options(yield_per=10_000))
    for (scenario, slot), rows in groupby(result, key=lambda r: (r[0], r[1])):
        matrix = np.full((sizes[scenario], len(STAT_FIELDS)), np.nan, dtype=DTYPE)
        label = None
        for row in rows:
            label = row[2]
            matrix[row[3]] = [np.nan if v is None else v for v in row[4:]]
        fields = matrix.T
        conn.execute(
            chunks.insert(),
            [
                {
                    "scenario": scenario,
                    "slot": slot,
                    "chunk": k,
                    "slot_label": label,
                    "n_markets": fields[:, start : start + CHUNK].shape[1],
                    "stats": compress(np.ascontiguousarray(fields[:, start : start + CHUNK]).tobytes()),
                }
                for k, start in enumerate(range(0, fields.shape[1], CHUNK))
            ],
        )
    _drop_rows_table()


def downgrade() -> None:
    _create_rows_table()
    conn = op.get_bind()
    uuids: dict[str, dict[int, str]] = {}
    for uuid, scenario, position in conn.execute(sa.select(markets)):
        uuids.setdefault(scenario, {})[position] = uuid
    query = sa.select(chunks).order_by(chunks.c.scenario, chunks.c.slot, chunks.c.chunk)
    decompress = zstandard.ZstdDecompressor().decompress
    for row in conn.execute(query.execution_options(yield_per=100)):
        fields = np.frombuffer(decompress(row.stats), dtype=DTYPE).reshape(len(STAT_FIELDS), row.n_markets)
        values = fields.T.tolist()
        rows = []
        for i, stats in enumerate(values):
            rows.append(
                {
                    "market_uuid": uuids[row.scenario][row.chunk * CHUNK + i],
                    "slot": row.slot,
                    "slot_label": row.slot_label,
                    **{name: None if v != v else v for name, v in zip(STAT_FIELDS, stats, strict=True)},
                }
            )
        conn.execute(slot_stats.insert(), rows)
    op.drop_table("slot_stat_chunks")
