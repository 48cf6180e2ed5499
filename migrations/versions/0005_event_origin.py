"""events: who sent them (origin), and event ids unique per origin

Browser events ('browser') and the shop's own ('shop': recs.track, imports, email clicks) get
separate event-id namespaces, so a browser can never take an id the shop uses later (an order
id, say). Browser purchases are the untrusted ones. Infinite values stored before values were
bounded are cleared.

Revision ID: 0005_event_origin
Revises: 0004_refused_requests
Create Date: 2026-12-03 18:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_event_origin"
down_revision = "0004_refused_requests"
branch_labels = None
depends_on = None

OLD_KEY = "uq_recs_events_event_id_line_no"
NEW_KEY = "uq_recs_events_event_id_line_no_origin"


def upgrade() -> None:
    with op.batch_alter_table("recs_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin", sa.String(length=8), server_default="shop", nullable=False))
    op.execute("UPDATE recs_events SET origin = 'browser' WHERE source = 'web'")
    # Values stored before they were bounded: an infinite one (price x quantity overflowing)
    # made exports invalid JSON. Above the largest float is only infinity (and NaN on PostgreSQL).
    op.execute("UPDATE recs_events SET value = NULL WHERE value > 1.7976931348623157e308 "
               "OR value < -1.7976931348623157e308")
    with op.batch_alter_table("recs_events", schema=None) as batch_op:
        batch_op.drop_constraint(OLD_KEY, type_="unique")
        batch_op.create_unique_constraint(NEW_KEY, ["event_id", "line_no", "origin"])


def downgrade() -> None:
    # Of two events that share an id across origins, the shop's is kept.
    op.execute(
        "DELETE FROM recs_events WHERE origin = 'browser' AND EXISTS (SELECT 1 FROM recs_events AS shop "
        "WHERE shop.origin = 'shop' AND shop.event_id = recs_events.event_id AND shop.line_no = recs_events.line_no)"
    )
    with op.batch_alter_table("recs_events", schema=None) as batch_op:
        batch_op.drop_constraint(NEW_KEY, type_="unique")
        batch_op.create_unique_constraint(OLD_KEY, ["event_id", "line_no"])
        batch_op.drop_column("origin")
