"""privacy: erasure log and suppression list

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 19:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recs_erasures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("erased_at", sa.DateTime(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.Column("anonymous_subjects", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recs_erasures")),
    )
    with op.batch_alter_table("recs_erasures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recs_erasures_erased_at"), ["erased_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_recs_erasures_subject"), ["subject"], unique=False)

    op.create_table(
        "recs_suppressions",
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_recs_suppressions")),
    )
    with op.batch_alter_table("recs_suppressions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recs_suppressions_subject"), ["subject"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("recs_suppressions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recs_suppressions_subject"))
    op.drop_table("recs_suppressions")
    with op.batch_alter_table("recs_erasures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recs_erasures_subject"))
        batch_op.drop_index(batch_op.f("ix_recs_erasures_erased_at"))
    op.drop_table("recs_erasures")
