"""The ``recs_*`` tables.

They live on their own ``MetaData`` with a naming convention, so they never mix with the
shop's tables and have no foreign keys to them. Events are append-only; ``user_key`` is the
pseudonymised shop user id (see ``tracking.identity``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")

ITEM_ID_LENGTH = 128
EVENT_ID_LENGTH = 64
KEY_LENGTH = 64


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON}


class Item(Base):
    """A catalogue item, as the shop last described it."""

    __tablename__ = "recs_items"

    id: Mapped[str] = mapped_column(String(ITEM_ID_LENGTH), primary_key=True)
    title: Mapped[str | None] = mapped_column(String(500))
    url: Mapped[str | None] = mapped_column(String(2000))
    image_url: Mapped[str | None] = mapped_column(String(2000))
    price: Mapped[float | None] = mapped_column(Float)
    category: Mapped[str | None] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    in_stock: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)


class Event(Base):
    """One interaction. A purchase with several lines is one row per line (``line_no``)."""

    __tablename__ = "recs_events"
    __table_args__ = (
        # Event ids are unique per origin: a browser cannot take an id the shop uses.
        UniqueConstraint("event_id", "line_no", "origin", name="uq_recs_events_event_id_line_no_origin"),
        Index("ix_recs_events_user_ts", "user_key", "ts"),
        Index("ix_recs_events_anon_ts", "anonymous_id", "ts"),
        Index("ix_recs_events_item_ts", "item_id", "ts"),
        Index("ix_recs_events_type_ts", "type", "ts"),
        Index("ix_recs_events_ts", "ts"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(EVENT_ID_LENGTH), nullable=False)
    line_no: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=0)
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    user_key: Mapped[str | None] = mapped_column(String(KEY_LENGTH))
    anonymous_id: Mapped[str | None] = mapped_column(String(KEY_LENGTH))
    item_id: Mapped[str | None] = mapped_column(String(ITEM_ID_LENGTH))
    quantity: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    value: Mapped[float | None] = mapped_column(Float)
    ts: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    client_ts: Mapped[datetime | None] = mapped_column(DateTime)
    source: Mapped[str] = mapped_column(String(16), nullable=False, default="web")
    # Who sent it: "browser" (untrusted: the public endpoint) or "shop" (recs.track, imports, ...).
    origin: Mapped[str] = mapped_column(String(8), nullable=False, default="shop", server_default="shop")
    context: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Identity(Base):
    """An anonymous id that logged in as a user; its history counts for that user."""

    __tablename__ = "recs_identities"

    anonymous_id: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    user_key: Mapped[str] = mapped_column(String(KEY_LENGTH), nullable=False, index=True)
    linked_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class ModelRun(Base):
    """One training run, whether it published a bundle or not."""

    __tablename__ = "recs_model_runs"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    version: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # running|published|rejected|failed
    trigger: Mapped[str] = mapped_column(String(32), nullable=False, default="manual")
    started_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    message: Mapped[str | None] = mapped_column(Text)


class Lease(Base):
    """A named lock with an expiry, so one job runs at a time across processes."""

    __tablename__ = "recs_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128), nullable=False)
    acquired_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


metadata = Base.metadata


class Erasure(Base):
    """A proof that a person was erased, and the signal serving masks their factors by.

    ``subject`` is a keyed fingerprint of the erased user key (see ``privacy.keys``), never the
    user id or the user key itself; ``counts`` are the rows deleted per kind of data.
    """

    __tablename__ = "recs_erasures"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    subject: Mapped[str] = mapped_column(String(KEY_LENGTH), nullable=False, index=True)
    erased_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    suppressed: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # Fingerprints of the anonymous ids erased with the subject (their own model rows, if any).
    anonymous_subjects: Mapped[list[str] | None] = mapped_column(JSON)


class Suppression(Base):
    """A user key or anonymous id (as a keyed fingerprint) whose future events are not stored."""

    __tablename__ = "recs_suppressions"

    fingerprint: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    subject: Mapped[str] = mapped_column(String(KEY_LENGTH), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class Experiment(Base):
    """An A/B test: variants with traffic percentages and per-variant serving overrides.

    ``variants`` is a list of ``{"name", "percent", "overrides"}``; ``status`` is ``running``
    or ``paused``; ``source`` says whether config or the dashboard declared it.
    """

    __tablename__ = "recs_experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    widgets: Mapped[list[str] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="running")
    source: Mapped[str] = mapped_column(String(16), nullable=False, default="config")
    starts_at: Mapped[datetime | None] = mapped_column(DateTime)
    ends_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class ExperimentAssignment(Base):
    """The variant a visitor got, kept so it is sticky; a login moves it to the user key."""

    __tablename__ = "recs_experiment_assignments"
    __table_args__ = (
        UniqueConstraint("experiment_id", "user_key", name="uq_recs_experiment_assignments_user"),
        UniqueConstraint("experiment_id", "anonymous_id", name="uq_recs_experiment_assignments_anon"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    experiment_id: Mapped[int] = mapped_column(Integer, nullable=False)
    variant: Mapped[str] = mapped_column(String(64), nullable=False)
    user_key: Mapped[str | None] = mapped_column(String(KEY_LENGTH), index=True)
    anonymous_id: Mapped[str | None] = mapped_column(String(KEY_LENGTH), index=True)
    assigned_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)

class EmailSend(Base):
    """One item shown in one email block: what "already sent in this campaign" is checked
    against. ``user_key`` is the stored (pseudonymised) user key, never the shop user id."""

    __tablename__ = "recs_email_sends"
    __table_args__ = (
        Index("ix_recs_email_sends_user_campaign_sent", "user_key", "campaign", "sent_at"),
        Index("ix_recs_email_sends_campaign_sent", "campaign", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_key: Mapped[str] = mapped_column(String(KEY_LENGTH), nullable=False)
    campaign: Mapped[str] = mapped_column(String(128), nullable=False)
    item_id: Mapped[str] = mapped_column(String(ITEM_ID_LENGTH), nullable=False)
    position: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    sent_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class EmailClick(Base):
    """A click on an email link (also stored as a ``click`` event): the attribution query's
    index. ``target_item_id`` is where the visitor was sent when the item was out of stock."""

    __tablename__ = "recs_email_clicks"
    __table_args__ = (
        Index("ix_recs_email_clicks_campaign_clicked", "campaign", "clicked_at"),
        Index("ix_recs_email_clicks_clicked_at", "clicked_at"),
        Index("ix_recs_email_clicks_user_key", "user_key"),
        Index("ix_recs_email_clicks_anonymous_id", "anonymous_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    user_key: Mapped[str] = mapped_column(String(KEY_LENGTH), nullable=False)
    anonymous_id: Mapped[str | None] = mapped_column(String(KEY_LENGTH))
    campaign: Mapped[str] = mapped_column(String(128), nullable=False)
    item_id: Mapped[str] = mapped_column(String(ITEM_ID_LENGTH), nullable=False)
    target_item_id: Mapped[str | None] = mapped_column(String(ITEM_ID_LENGTH))
    position: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    clicked_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class RefusedRequest(Base):
    """How many browser-facing POSTs (events, consent) the origin check refused, per day,
    endpoint and reason kind (``cross-site``, ``origin``, ``no-origin``, ``referer``)."""

    __tablename__ = "recs_refused_requests"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
