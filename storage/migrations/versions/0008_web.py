"""the web view: single-use sign-in links (hashed) and the session-signing secret

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 14:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_links",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("member_key", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_web_links_expires_at", "web_links", ["expires_at"])
    op.create_table(
        "web_secrets",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("web_secrets")
    op.drop_index("ix_web_links_expires_at", table_name="web_links")
    op.drop_table("web_links")
