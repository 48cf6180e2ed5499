"""The training lease: one holder at a time, expiry of a dead holder's lease, one run per trigger pair."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from conftest import make_app
from flask import Flask
from sqlalchemy import insert, select
from test_engine_train import SMALL, fill

from storefront_recs import leases
from storefront_recs.db import utcnow
from storefront_recs.engine.report import TrainReport
from storefront_recs.models import Lease, ModelRun


def test_one_holder_at_a_time_and_release(app: Flask) -> None:
    engine = app.extensions["storefront_recs"].engine
    assert leases.acquire(engine, "job", "a", ttl=60)
    assert not leases.acquire(engine, "job", "b", ttl=60)
    assert leases.acquire(engine, "job", "a", ttl=60)  # re-entrant for the same holder
    assert leases.renew(engine, "job", "a", ttl=60) and not leases.renew(engine, "job", "b", ttl=60)
    leases.release(engine, "job", "b")  # not b's to release
    assert not leases.acquire(engine, "job", "b", ttl=60)
    leases.release(engine, "job", "a")
    assert leases.acquire(engine, "job", "b", ttl=60)


def test_a_dead_holders_lease_expires(app: Flask) -> None:
    engine = app.extensions["storefront_recs"].engine
    with engine.begin() as conn:
        conn.execute(insert(Lease).values(name="job", holder="dead-host:1", acquired_at=utcnow() - timedelta(hours=2),
                                          expires_at=utcnow() - timedelta(seconds=1)))
    assert leases.acquire(engine, "job", "alive", ttl=60)
    assert not leases.renew(engine, "job", "dead-host:1", ttl=60)


def test_the_keeper_renews_while_the_holder_lives(sqlite_app: Flask) -> None:
    engine = sqlite_app.extensions["storefront_recs"].engine
    with leases.held(engine, "job", ttl=0.3) as holder:
        assert holder is not None
        with engine.connect() as conn:
            first = conn.execute(select(Lease.expires_at)).scalar_one()
        threading.Event().wait(0.5)  # let the keeper beat a few times (not a timing assertion)
        with engine.connect() as conn:
            assert conn.execute(select(Lease.expires_at)).scalar_one() > first
        with leases.held(engine, "job", ttl=60) as other:
            assert other is None
    with engine.connect() as conn:
        assert conn.execute(select(Lease)).first() is None


def test_two_concurrent_train_triggers_produce_one_run(database_uri: str, tmp_path: Path) -> None:
    app = make_app(database_uri, tmp_path, **SMALL)
    recs = fill(app)
    inside, release = threading.Event(), threading.Event()
    results: list[TrainReport] = []

    def hold_at_load(stage: str) -> None:
        if stage == "load":
            inside.set()
            release.wait(30)

    def first() -> None:
        with app.app_context():
            results.append(recs.train(trigger="schedule", progress=hold_at_load))

    thread = threading.Thread(target=first)
    thread.start()
    assert inside.wait(30)
    with app.app_context():
        second = recs.train(trigger="manual")  # the first run is mid-training and holds the lease
    release.set()
    thread.join(60)
    assert second.status == "skipped" and not second.published and second.run_id is None
    assert results[0].status == "published"
    with app.extensions["storefront_recs"].engine.connect() as conn:
        run_rows = conn.execute(select(ModelRun.trigger, ModelRun.status)).all()
        assert [tuple(r) for r in run_rows] == [("schedule", "published")]
        assert conn.execute(select(Lease)).first() is None  # released after the run
    with app.app_context():
        assert recs.train().published  # free again
    app.extensions["storefront_recs"].engine.dispose()


def test_a_run_proceeds_when_the_previous_trainer_died(sqlite_app: Flask) -> None:
    sqlite_app.config.update(SMALL)
    recs = fill(sqlite_app)
    engine = sqlite_app.extensions["storefront_recs"].engine
    with engine.begin() as conn:
        conn.execute(insert(Lease).values(name=leases.TRAINING_LEASE, holder="gone:42",
                                          acquired_at=utcnow() - timedelta(hours=1), expires_at=utcnow() + timedelta(hours=1)))
    with sqlite_app.app_context():
        assert recs.train().status == "skipped"  # still within the dead holder's lease
        with engine.begin() as conn:
            conn.execute(Lease.__table__.update().values(expires_at=utcnow() - timedelta(seconds=1)))
        assert recs.train().published
