"""experiments: A/B tests and sticky visitor assignments

Revision ID: 0003_experiments
Revises: 0002
Create Date: 2026-11-28 19:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_experiments"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recs_experiments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("variants", sa.JSON(), nullable=False),
        sa.Column("widgets", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=True),
        sa.Column("ends_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recs_experiments")),
        sa.UniqueConstraint("key", name=op.f("uq_recs_experiments_key")),
    )
    op.create_table(
        "recs_experiment_assignments",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("variant", sa.String(length=64), nullable=False),
        sa.Column("user_key", sa.String(length=64), nullable=True),
        sa.Column("anonymous_id", sa.String(length=64), nullable=True),
        sa.Column("assigned_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recs_experiment_assignments")),
        sa.UniqueConstraint("experiment_id", "user_key", name="uq_recs_experiment_assignments_user"),
        sa.UniqueConstraint("experiment_id", "anonymous_id", name="uq_recs_experiment_assignments_anon"),
    )
    with op.batch_alter_table("recs_experiment_assignments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recs_experiment_assignments_user_key"), ["user_key"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_recs_experiment_assignments_anonymous_id"), ["anonymous_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("recs_experiment_assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recs_experiment_assignments_anonymous_id"))
        batch_op.drop_index(batch_op.f("ix_recs_experiment_assignments_user_key"))
    op.drop_table("recs_experiment_assignments")
    op.drop_table("recs_experiments")
