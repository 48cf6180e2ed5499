"""Scheduling: triggers from config, the job, one embedded scheduler per model directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from conftest import make_app
from flask import Flask
from sqlalchemy import select
from test_engine_train import SMALL, fill

from storefront_recs.models import ModelRun
from storefront_recs.scheduler import (
    JOB_ID,
    build_scheduler,
    make_trigger,
    scheduled_train,
    take_process_lock,
)


def test_cron_wins_over_interval_and_zero_means_never() -> None:
    assert isinstance(make_trigger({"RECS_TRAIN_CRON": "0 3 * * *", "RECS_TRAIN_INTERVAL": 60}), CronTrigger)
    trigger = make_trigger({"RECS_TRAIN_CRON": None, "RECS_TRAIN_INTERVAL": 600})
    assert isinstance(trigger, IntervalTrigger) and trigger.interval.total_seconds() == 600
    assert make_trigger({"RECS_TRAIN_CRON": None, "RECS_TRAIN_INTERVAL": 0}) is None
    with pytest.raises(ValueError):
        make_trigger({"RECS_TRAIN_CRON": "not a crontab"})


def test_the_scheduled_job_trains_and_is_recorded_as_scheduled(sqlite_app: Flask) -> None:
    sqlite_app.config.update(SMALL)
    fill(sqlite_app)
    scheduler = build_scheduler(sqlite_app, blocking=True)
    job = scheduler.get_job(JOB_ID)
    assert job is not None and job.max_instances == 1
    report = scheduled_train(sqlite_app)  # what the job runs
    assert report["published"] is True
    with sqlite_app.extensions["storefront_recs"].engine.connect() as conn:
        assert conn.execute(select(ModelRun.trigger)).scalar_one() == "schedule"


def test_the_cli_refuses_to_run_without_a_schedule(sqlite_app: Flask) -> None:
    sqlite_app.config["RECS_TRAIN_INTERVAL"] = 0
    result = sqlite_app.test_cli_runner().invoke(args=["recs", "scheduler"])
    assert result.exit_code != 0 and "not scheduled" in result.output


def test_only_one_process_holds_the_scheduler_lock(tmp_path: Path) -> None:
    assert take_process_lock(str(tmp_path))
    assert not take_process_lock(str(tmp_path))  # not even a second app in the same process
    code = f"from storefront_recs.scheduler import take_process_lock; print(take_process_lock({str(tmp_path)!r}))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == "False"
    assert take_process_lock(str(tmp_path / "elsewhere"))  # another model directory is free


def test_embedded_scheduler_starts_in_one_app_only(sqlite_uri: str, tmp_path: Path) -> None:
    config = {"RECS_EMBEDDED_SCHEDULER": True, "RECS_TRAIN_INTERVAL": 3600}
    first = make_app(sqlite_uri, tmp_path, **config)
    second = make_app(sqlite_uri, tmp_path, **config)
    scheduler = getattr(first.extensions["storefront_recs"], "scheduler", None)
    try:
        assert scheduler is not None and scheduler.running and scheduler.get_job(JOB_ID) is not None
        assert getattr(second.extensions["storefront_recs"], "scheduler", None) is None
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)


def test_the_scheduler_runs_the_retention_purge_daily(sqlite_app: Flask) -> None:
    from datetime import timedelta

    from storefront_recs.db import utcnow
    from storefront_recs.scheduler import RETENTION_JOB_ID, scheduled_purge

    recs = sqlite_app.extensions["storefront_recs"].recs
    recs.track("view", user_id="old", item_id="sku-1", ts=utcnow() - timedelta(days=800))
    recs.track("view", user_id="new", item_id="sku-1", ts=utcnow() - timedelta(days=3))
    scheduler = build_scheduler(sqlite_app, blocking=True)
    assert scheduler.get_job(RETENTION_JOB_ID) is not None
    report = scheduled_purge(sqlite_app)  # what the job runs
    assert report["events"] == {"view": 1}
    with sqlite_app.extensions["storefront_recs"].engine.connect() as conn:
        assert conn.execute(select(ModelRun)).first() is None
        from storefront_recs.models import Event

        assert [row.user_key for row in conn.execute(select(Event.user_key))] == [
            sqlite_app.extensions["storefront_recs"].user_key("new")
        ]
