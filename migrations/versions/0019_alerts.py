"""limits set in the console (audited) and alerts
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"


def upgrade() -> None:
    op.create_table(
        "limit_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("exchange", sa.String(length=300), nullable=False),
        sa.Column("market_uuid", sa.String(length=36), nullable=False),
        sa.Column("market_name", sa.String(length=200), nullable=False),
        sa.Column("import_kwh", sa.Float(), nullable=True),
        sa.Column("export_kwh", sa.Float(), nullable=True),
        sa.Column("changed_by", sa.String(length=200), nullable=False),
        sa.Column("changed_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("limit_changes", schema=None) as batch_op:
        batch_op.create_index("ix_limit_changes_market", ["exchange", "market_uuid", "id"], unique=False)
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("exchange", sa.String(length=300), nullable=False),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("market_uuid", sa.String(length=36), nullable=False),
        sa.Column("market_name", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("evaluations", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("started_slot", sa.String(length=16), nullable=True),
        sa.Column("firing_at", sa.Float(), nullable=True),
        sa.Column("firing_slot", sa.String(length=16), nullable=True),
        sa.Column("resolved_at", sa.Float(), nullable=True),
        sa.Column("resolved_slot", sa.String(length=16), nullable=True),
        sa.Column("acked_by", sa.String(length=200), nullable=True),
        sa.Column("acked_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index("ix_alerts_state", ["exchange", "state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_alerts_state")
    op.drop_table("alerts")
    with op.batch_alter_table("limit_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_limit_changes_market")
    op.drop_table("limit_changes")
