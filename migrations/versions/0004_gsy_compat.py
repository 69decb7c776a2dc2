"""the Grid Singularity SDK face: aggregators, their selected markets, the websocket outbox
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table(
        "gsy_aggregators",
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("scenario", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("uuid"),
    )
    with op.batch_alter_table("gsy_aggregators", schema=None) as batch_op:
        batch_op.create_index("ix_gsy_aggregators_owner", ["scenario", "owner"], unique=False)
    op.create_table(
        "gsy_selections",
        sa.Column("aggregator_uuid", sa.String(length=36), nullable=False),
        sa.Column("device_uuid", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["aggregator_uuid"], ["gsy_aggregators.uuid"]),
        sa.PrimaryKeyConstraint("aggregator_uuid", "device_uuid"),
    )
    op.create_table(
        "gsy_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("gsy_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_gsy_outbox_channel", ["channel", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("gsy_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_gsy_outbox_channel")
    op.drop_table("gsy_outbox")
    op.drop_table("gsy_selections")
    with op.batch_alter_table("gsy_aggregators", schema=None) as batch_op:
        batch_op.drop_index("ix_gsy_aggregators_owner")
    op.drop_table("gsy_aggregators")
