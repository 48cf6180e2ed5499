"""refused requests: daily counts of browser POSTs refused by the origin check

Revision ID: 0004_refused_requests
Revises: 0003_email, 0003_experiments
Create Date: 2026-12-03 18:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_refused_requests"
down_revision = ("0003_email", "0003_experiments")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recs_refused_requests",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("endpoint", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "endpoint", "reason", name=op.f("pk_recs_refused_requests")),
    )


def downgrade() -> None:
    op.drop_table("recs_refused_requests")
