"""members' platform ids in one (member, platform, platform_id) table instead of a column per platform

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 11:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_key", sa.String(length=100), nullable=False),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("platform_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("member_key", "platform", name="uq_identities_member_platform"),
    )
    op.create_index("ix_identities_platform_id", "identities", ["platform", "platform_id"])
    # every id the members table knew, kept
    for platform, column in (("slack", "slack_id"), ("feishu", "feishu_id")):
        op.execute(
            f"INSERT INTO identities (member_key, platform, platform_id) "
            f"SELECT key, '{platform}', {column} FROM members WHERE {column} IS NOT NULL AND {column} <> ''"
        )
    with op.batch_alter_table("members") as batch_op:
        batch_op.drop_index("ix_members_slack_id")
        batch_op.drop_index("ix_members_feishu_id")
        batch_op.drop_column("slack_id")
        batch_op.drop_column("feishu_id")


def downgrade() -> None:
    with op.batch_alter_table("members") as batch_op:
        batch_op.add_column(sa.Column("slack_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("feishu_id", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_members_slack_id", ["slack_id"])
        batch_op.create_index("ix_members_feishu_id", ["feishu_id"])
    for platform, column in (("slack", "slack_id"), ("feishu", "feishu_id")):
        op.execute(
            f"UPDATE members SET {column} = (SELECT platform_id FROM identities "
            f"WHERE identities.member_key = members.key AND identities.platform = '{platform}')"
        )
    op.drop_index("ix_identities_platform_id", table_name="identities")
    op.drop_table("identities")
