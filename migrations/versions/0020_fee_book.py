"""fee book: changes found by the slot they apply from, and a snapshot of the fees in force.

The fee book (app.exchange.fees) reads the changes that apply from the slot after the running
one when it opens that slot: an index on (scenario, applies_from_slot) keeps that read short
however long the run (it replaced a query over every change of the scenario). Now and then it
keeps the fees of a started slot in exchange_state, so a new process reads only what followed.
"""

import sqlalchemy as sa
from alembic import op

revision, down_revision = "0020", "0019"
INDEX, COLUMNS = "ix_fee_changes_scenario_slot", ["scenario", "applies_from_slot"]


def upgrade() -> None:
    with op.batch_alter_table("fee_changes", schema=None) as batch_op:
        batch_op.create_index(INDEX, COLUMNS, unique=False)
    with op.batch_alter_table("exchange_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fees_slot", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("fees", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("exchange_state", schema=None) as batch_op:
        batch_op.drop_column("fees")
        batch_op.drop_column("fees_slot")
    with op.batch_alter_table("fee_changes", schema=None) as batch_op:
        batch_op.drop_index(INDEX)
