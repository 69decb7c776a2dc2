"""the console's link to a Grid Singularity exchange: its aggregator and last seen state
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "gsy_link",
        sa.Column("exchange", sa.String(length=300), nullable=False),
        sa.Column("aggregator_uuid", sa.String(length=64), nullable=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("exchange"),
    )


def downgrade() -> None:
    op.drop_table("gsy_link")
