"""Retention: the purge job deletes exactly what is older than its type's limit, in batches."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from conftest import make_app
from flask import Flask
from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, insert, select

from storefront_recs import Recs
from storefront_recs.models import Erasure, Event, Identity
from storefront_recs.retention import aged_tables, purge_expired_events, set_age_column
from storefront_recs.tracking.schemas import EVENT_TYPES

NOW = datetime(2026, 6, 1, 12, 0, 0)  # the simulated clock


def add_events(engine: Engine, *events: tuple[str, str, timedelta]) -> None:
    """``(event_id, type, age)`` rows, ``age`` before NOW."""
    with engine.begin() as conn:
        conn.execute(
            insert(Event),
            [
                {"event_id": eid, "line_no": 0, "type": kind, "user_key": "k", "anonymous_id": f"anon-{eid}",
                 "item_id": "sku-1", "quantity": 1, "ts": NOW - age, "source": "web"}
                for eid, kind, age in events
            ],
        )


def remaining(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.scalars(select(Event.event_id)))


def days(n: float) -> timedelta:
    return timedelta(days=n)


def test_purge_deletes_only_what_is_older_than_each_types_limit(app: Flask) -> None:
    engine = app.extensions["storefront_recs"].engine
    add_events(
        engine,
        ("view-old", "view", days(761)),
        ("view-limit", "view", days(760)),  # exactly at the limit: kept
        ("view-young", "view", days(759)),
        ("impression-old", "impression", days(91)),
        ("impression-young", "impression", days(89)),
        ("purchase-800d", "purchase", days(800)),  # purchases are kept for 1000 days here
        ("legacy-old", "legacy_type", days(761)),  # a type no longer known: default limit
    )
    report = purge_expired_events(
        engine, NOW, retention_days=760, days_by_type={"impression": 90, "purchase": 1000}
    )
    assert report.events == {"view": 1, "impression": 1, "other": 1}
    assert report.total_events == 3
    assert remaining(engine) == {"view-limit", "view-young", "impression-young", "purchase-800d"}


def test_purge_works_in_batches_and_a_dry_run_deletes_nothing(app: Flask) -> None:
    engine = app.extensions["storefront_recs"].engine
    add_events(engine, *[(f"old-{i:04d}", "view", days(800 + i)) for i in range(7)], ("new-0001", "view", days(1)))

    dry = purge_expired_events(engine, NOW, batch_size=3, dry_run=True)
    assert dry.dry_run and dry.events == {"view": 7} and dry.batches == 0
    assert len(remaining(engine)) == 8

    report = purge_expired_events(engine, NOW, batch_size=3)
    assert report.events == {"view": 7}
    assert remaining(engine) == {"new-0001"}
    # Views in 3 + 3 + 1; one (empty) batch for every other type group, links and receipts.
    other_groups = len(EVENT_TYPES)  # the other known types, plus "other"
    assert report.batches == 3 + other_groups + 2 + len(aged_tables())
    assert purge_expired_events(engine, NOW, batch_size=3).total_events == 0


def test_old_identity_links_without_events_and_old_receipts_go_too(app: Flask) -> None:
    engine = app.extensions["storefront_recs"].engine
    add_events(engine, ("kept-event", "view", days(10)), ("gone-event", "view", days(800)))
    with engine.begin() as conn:
        conn.execute(
            insert(Identity),
            [
                {"anonymous_id": "anon-kept-event", "user_key": "k", "linked_at": NOW - days(800)},  # still used
                {"anonymous_id": "anon-gone-event", "user_key": "k", "linked_at": NOW - days(800)},
                {"anonymous_id": "anon-recent-link", "user_key": "k", "linked_at": NOW - days(5)},
            ],
        )
        conn.execute(
            insert(Erasure),
            [
                {"subject": "old", "erased_at": NOW - days(761), "counts": {}, "suppressed": True},
                {"subject": "new", "erased_at": NOW - days(1), "counts": {}, "suppressed": True},
            ],
        )
    report = purge_expired_events(engine, NOW)
    assert (report.events, report.identities, report.erasures) == ({"view": 1}, 1, 1)
    with engine.connect() as conn:
        assert set(conn.scalars(select(Identity.anonymous_id))) == {"anon-kept-event", "anon-recent-link"}
        assert set(conn.scalars(select(Erasure.subject))) == {"new"}


def test_recs_method_reads_the_retention_settings(database_uri: str, tmp_path: Path) -> None:
    app = make_app(database_uri, tmp_path, RECS_RETENTION_DAYS=30, RECS_RETENTION_DAYS_BY_TYPE={"search": 7})
    recs: Recs = app.extensions["storefront_recs"].recs
    engine = app.extensions["storefront_recs"].engine
    add_events(engine, ("view-31d", "view", days(31)), ("view-29d", "view", days(29)), ("search-8d", "search", days(8)))
    report = recs.purge_expired_events(now=NOW)
    assert report.events == {"view": 1, "search": 1}
    assert remaining(engine) == {"view-29d"}
    engine.dispose()


def test_cli_purge_events(app: Flask) -> None:
    engine = app.extensions["storefront_recs"].engine
    with engine.begin() as conn:  # far older than any limit, whatever today's date
        conn.execute(
            insert(Event),
            [{"event_id": "ancient-0001", "line_no": 0, "type": "view", "item_id": "a", "quantity": 1,
              "ts": datetime(2000, 1, 1), "source": "import"}],
        )
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["recs", "purge-events", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["events"] == {"view": 1} and remaining(engine) == {"ancient-0001"}
    done = runner.invoke(args=["recs", "purge-events"])
    assert json.loads(done.output)["total_events"] == 1 and remaining(engine) == set()


def test_other_personal_tables_expire_by_their_time_column(app: Flask) -> None:
    meta = MetaData()
    sends = Table(
        "recs_test_sends",
        meta,
        Column("id", Integer, primary_key=True),
        Column("user_key", String(64)),
        Column("opened_at", DateTime, nullable=True),
        Column("sent_at", DateTime, nullable=False),
    )
    Table("recs_test_catalogue", meta, Column("id", Integer, primary_key=True), Column("at", DateTime, nullable=False))
    engine = app.extensions["storefront_recs"].engine
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(sends), [{"user_key": "k", "sent_at": NOW - days(age)} for age in (761, 800, 759)])
    assert [(t.name, c.name) for t, c in aged_tables(meta)] == [("recs_test_sends", "sent_at")]

    assert purge_expired_events(engine, NOW, dry_run=True, meta=meta).tables == {"recs_test_sends": 2}
    assert purge_expired_events(engine, NOW, batch_size=1, meta=meta).tables == {"recs_test_sends": 2}
    with engine.connect() as conn:
        assert [row.sent_at for row in conn.execute(select(sends))] == [NOW - days(759)]
    set_age_column("recs_test_sends", None)  # a feature may opt out (or name another column)
    try:
        assert aged_tables(meta) == []
    finally:
        set_age_column("recs_test_sends", "sent_at")
    meta.drop_all(engine)
