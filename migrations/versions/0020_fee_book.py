"""fee book: changes found by the slot they apply from

The fee book (app.exchange.fees) reads the changes that apply from the slot after the running
one when it opens that slot: an index on (scenario, applies_from_slot) keeps that read short
however long the run (it replaced a query over every change of the scenario).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 23:00:00
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fee_changes", schema=None) as batch_op:
        batch_op.create_index("ix_fee_changes_scenario_slot", ["scenario", "applies_from_slot"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fee_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_fee_changes_scenario_slot")
