"""the platform time of an answer's newest applied change, so a late retry never undoes a newer one

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 12:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("updates") as batch_op:
        batch_op.add_column(sa.Column("changed_ts", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("updates") as batch_op:
        batch_op.drop_column("changed_ts")
