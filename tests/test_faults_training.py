"""Fault tests of training: a trainer killed with SIGKILL, a run that loses its lease, and the
embedded scheduler under gunicorn with four workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

from conftest import ROOT, make_app
from flask import Flask
from sqlalchemy import insert, select, update
from test_engine_train import SMALL, fill

from storefront_recs import leases
from storefront_recs.config import SETTINGS
from storefront_recs.db import utcnow
from storefront_recs.engine.bundle import STAGING_PREFIX
from storefront_recs.models import Lease, ModelRun

LEASE = 3.0  # seconds: a dead trainer's lease runs out this long after its last heartbeat
CONFIG = {**SMALL, "RECS_LEASE_TIMEOUT": LEASE}

# Trains the shop in tmp_path and, once the bundle is written to staging, says so and hangs.
TRAINER = textwrap.dedent("""
    import sys, time
    sys.path[:0] = [{tests!r}, {examples!r}]
    from minimal_app import create_app
    app = create_app({config!r})
    def hang_at_publish(stage):
        if stage == "publish":
            open({marker!r}, "w").close()
            time.sleep(3600)
    with app.app_context():
        app.extensions["storefront_recs"].recs.train(trigger="schedule", progress=hang_at_publish)
""")


def wait_for(predicate, what: str, attempts: int = 1200) -> None:  # type: ignore[no-untyped-def]
    for _ in range(attempts):
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def staging_dirs(model_dir: Path) -> list[str]:
    return [p.name for p in model_dir.iterdir() if p.name.startswith(STAGING_PREFIX)] if model_dir.exists() else []


def test_after_a_trainer_is_killed_the_next_scheduled_run_proceeds_and_cleans_up(sqlite_uri: str,
                                                                                   tmp_path: Path) -> None:
    app = make_app(sqlite_uri, tmp_path, **CONFIG)
    recs = fill(app)
    engine = app.extensions["storefront_recs"].engine
    marker = tmp_path / "at-publish"
    config = {"TESTING": True, "RECS_DATABASE_URI": sqlite_uri, "RECS_MODEL_DIR": str(tmp_path / "models"),
              **CONFIG}
    code = TRAINER.format(tests=str(ROOT / "tests"), examples=str(ROOT / "examples"), config=config,
                          marker=str(marker))
    trainer = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    try:
        wait_for(lambda: marker.exists() or trainer.poll() is not None, "the trainer to reach publishing")
        assert trainer.poll() is None, "the trainer exited before publishing"
        os.kill(trainer.pid, signal.SIGKILL)
    finally:
        trainer.kill()
        trainer.wait()
    with engine.connect() as conn:  # what the killed run left behind
        assert conn.execute(select(ModelRun.status)).scalars().all() == ["running"]
        assert conn.execute(select(Lease.holder)).scalar_one()
    assert staging_dirs(tmp_path / "models")

    with app.app_context():
        report = recs.train(trigger="schedule")  # at once: it waits out the dead run's lease
    assert report.status == "published", report
    with engine.connect() as conn:
        runs = conn.execute(select(ModelRun.status, ModelRun.message).order_by(ModelRun.id)).all()
        assert [r.status for r in runs] == ["failed", "published"]
        assert "lease expired" in runs[0].message
        assert conn.execute(select(Lease)).first() is None
    assert staging_dirs(tmp_path / "models") == []
    engine.dispose()
    assert SETTINGS["RECS_LEASE_TIMEOUT"].default <= 60  # by default too, a crash costs seconds, not minutes


def test_a_run_that_lost_its_lease_does_not_publish(sqlite_app: Flask) -> None:
    sqlite_app.config.update(CONFIG)
    recs = fill(sqlite_app)
    engine = sqlite_app.extensions["storefront_recs"].engine

    def stolen_at_publish(stage: str) -> None:
        if stage == "publish":  # e.g. paused longer than the lease: another run took it over
            with engine.begin() as conn:
                conn.execute(update(Lease).values(holder="another-run", expires_at=utcnow() + timedelta(hours=1)))

    with sqlite_app.app_context():
        report = recs.train(progress=stolen_at_publish)
        assert report.status == "failed" and not report.published
        assert "lost the training lease" in report.message
        assert recs.model_bundle() is None
    model_dir = Path(sqlite_app.config["RECS_MODEL_DIR"])
    assert not (model_dir / "CURRENT").exists() and staging_dirs(model_dir) == []
    with engine.connect() as conn:
        assert conn.execute(select(Lease.holder)).scalar_one() == "another-run"  # not released by the loser


def test_the_dashboard_lists_a_dead_run_as_failed_once_its_lease_expired(sqlite_app: Flask) -> None:
    engine = sqlite_app.extensions["storefront_recs"].engine
    recs = sqlite_app.extensions["storefront_recs"].recs
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(insert(ModelRun).values(status="running", trigger="schedule", started_at=now))
        conn.execute(insert(Lease).values(name=leases.TRAINING_LEASE, holder="alive:1", acquired_at=now,
                                          expires_at=now + timedelta(hours=1)))
    with sqlite_app.app_context():
        assert [r["status"] for r in recs.model_runs()] == ["running"]  # its holder lives
        with engine.begin() as conn:
            conn.execute(update(Lease).values(expires_at=now - timedelta(seconds=1)))  # no heartbeat since
        assert [r["status"] for r in recs.model_runs()] == ["failed"]
    health = sqlite_app.test_client().get("/recs/health").json
    assert health["checks"]["scheduler"]["last_run"]["status"] == "failed"


WSGI = textwrap.dedent("""
    import logging, sys
    sys.path[:0] = [{examples!r}]
    logging.basicConfig(filename={log!r}, level=logging.INFO, format="%(process)d %(name)s %(message)s")
    from minimal_app import create_app
    app = create_app({config!r})
""")


def test_the_embedded_scheduler_runs_each_job_once_under_gunicorn_with_four_workers(sqlite_uri: str,
                                                                                     tmp_path: Path) -> None:
    app = make_app(sqlite_uri, tmp_path, **SMALL)
    fill(app)
    app.extensions["storefront_recs"].engine.dispose()
    log = tmp_path / "recs.log"
    config = {"RECS_DATABASE_URI": sqlite_uri, "RECS_MODEL_DIR": str(tmp_path / "models"),
              "RECS_EMBEDDED_SCHEDULER": True, "RECS_TRAIN_INTERVAL": 2, **SMALL}
    (tmp_path / "shop_wsgi.py").write_text(WSGI.format(examples=str(ROOT / "examples"), log=str(log), config=config))
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-w", "4", "-b", "127.0.0.1:0", "--chdir", str(tmp_path),
         "shop_wsgi:app"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        def runs() -> list[str]:
            text = log.read_text() if log.exists() else ""
            return [line for line in text.splitlines() if "scheduled training" in line]

        wait_for(lambda: len(runs()) >= 3 or server.poll() is not None, "three scheduled runs")
        assert server.poll() is None, server.stderr.read() if server.stderr else ""
    finally:
        server.terminate()
        server.wait(30)
    text = log.read_text()
    started = [line for line in text.splitlines() if "embedded scheduler started" in line]
    assert len(started) == 1, text  # one of the four workers runs the schedule
    assert all("training published" in line or "training rejected" in line for line in runs()), runs()
    scheduler_pid = started[0].split()[0]
    assert {line.split()[0] for line in runs()} == {scheduler_pid}
