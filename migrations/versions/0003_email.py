"""email: items sent in email blocks, clicks on their links

Revision ID: 0003_email
Revises: 0002
Create Date: 2026-11-28 19:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_email"
down_revision = "0002"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "recs_email_sends",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("user_key", sa.String(length=64), nullable=False),
        sa.Column("campaign", sa.String(length=128), nullable=False),
        sa.Column("item_id", sa.String(length=128), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recs_email_sends")),
    )
    with op.batch_alter_table("recs_email_sends", schema=None) as batch_op:
        batch_op.create_index(
            "ix_recs_email_sends_user_campaign_sent", ["user_key", "campaign", "sent_at"], unique=False
        )
        batch_op.create_index("ix_recs_email_sends_campaign_sent", ["campaign", "sent_at"], unique=False)

    op.create_table(
        "recs_email_clicks",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("user_key", sa.String(length=64), nullable=False),
        sa.Column("anonymous_id", sa.String(length=64), nullable=True),
        sa.Column("campaign", sa.String(length=128), nullable=False),
        sa.Column("item_id", sa.String(length=128), nullable=False),
        sa.Column("target_item_id", sa.String(length=128), nullable=True),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("clicked_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recs_email_clicks")),
    )
    with op.batch_alter_table("recs_email_clicks", schema=None) as batch_op:
        batch_op.create_index("ix_recs_email_clicks_campaign_clicked", ["campaign", "clicked_at"], unique=False)
        batch_op.create_index("ix_recs_email_clicks_clicked_at", ["clicked_at"], unique=False)
        batch_op.create_index("ix_recs_email_clicks_user_key", ["user_key"], unique=False)
        batch_op.create_index("ix_recs_email_clicks_anonymous_id", ["anonymous_id"], unique=False)


def downgrade() -> None:
    op.drop_table("recs_email_clicks")
    op.drop_table("recs_email_sends")
