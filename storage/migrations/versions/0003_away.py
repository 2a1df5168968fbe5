"""days members are away, as said in chat (`/weekly away`)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "away",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_key", sa.String(length=100), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("member_key", "first_day", "last_day", name="uq_away_range"),
    )
    op.create_index("ix_away_member_key", "away", ["member_key"])


def downgrade() -> None:
    op.drop_index("ix_away_member_key", table_name="away")
    op.drop_table("away")
