"""closing sections as revisions a lead reviews: who edited, which one is current, the snapshots shown

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 12:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("summaries") as batch:
        batch.add_column(sa.Column("author", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("chosen_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "snapshots",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("cycle_id", sa.Integer(), sa.ForeignKey("cycles.id", ondelete="CASCADE"), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("markdown", sa.Text(), nullable=False),
        sa.Column("summary_id", sa.Integer(), sa.ForeignKey("summaries.id", ondelete="SET NULL"), nullable=True),
        sa.Column("made_by", sa.String(length=100), nullable=True),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("cycle_id", "digest", name="uq_snapshot_digest"),
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("cycle_id", sa.Integer(), sa.ForeignKey("cycles.id", ondelete="CASCADE"), nullable=False),
        sa.Column("target", sa.String(length=40), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("cycle_id", "target", name="uq_document_target"),
    )


def downgrade() -> None:
    op.drop_table("documents")
    op.drop_table("snapshots")
    with op.batch_alter_table("summaries") as batch:
        batch.drop_column("chosen_at")
        batch.drop_column("author")
