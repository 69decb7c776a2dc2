"""fee book: changes found by the slot they apply from (revision 0020 after 0019).

The fee book (app.exchange.fees) reads the changes that apply from the slot after the running
one when it opens that slot: an index on (scenario, applies_from_slot) keeps that read short
however long the run (it replaced a query over every change of the scenario).
"""

from alembic import op

revision, down_revision = "0020", "0019"
INDEX, COLUMNS = "ix_fee_changes_scenario_slot", ["scenario", "applies_from_slot"]


def upgrade() -> None:
    with op.batch_alter_table("fee_changes", schema=None) as batch_op:
        batch_op.create_index(INDEX, COLUMNS, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fee_changes", schema=None) as batch_op:
        batch_op.drop_index(INDEX)
