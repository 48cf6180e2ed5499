"""Scheduled training with APScheduler, run in exactly one process.

``flask recs scheduler`` runs a blocking scheduler in its own process. For single-process
development, ``RECS_EMBEDDED_SCHEDULER = True`` starts a background scheduler inside the web
app, but only in the process that takes an exclusive file lock next to the model bundles;
the other workers (or the reloader's parent) skip it. Either way, every run still takes the
database training lease, so a duplicate trigger never trains twice at once.
"""

from __future__ import annotations

import fcntl
import logging
import os
from typing import IO, Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask

from .assembly import state_of

log = logging.getLogger(__name__)

JOB_ID = "storefront_recs.train"
RETENTION_JOB_ID = "storefront_recs.retention"
LOCK_FILE = ".scheduler.lock"
_lock_handles: list[IO[str]] = []


def make_trigger(config: Any) -> CronTrigger | IntervalTrigger | None:
    """The training trigger: ``RECS_TRAIN_CRON`` (crontab, UTC) else ``RECS_TRAIN_INTERVAL`` seconds."""
    cron = config.get("RECS_TRAIN_CRON")
    if cron:
        return CronTrigger.from_crontab(cron, timezone="UTC")
    interval = int(config.get("RECS_TRAIN_INTERVAL") or 0)
    if interval > 0:
        return IntervalTrigger(seconds=interval, timezone="UTC")
    return None


def scheduled_train(app: Flask) -> dict[str, Any]:
    """The job: one training run with trigger 'schedule' (returns the report as a dict)."""
    with app.app_context():
        report = state_of(app).recs.train(trigger="schedule")
    log.info("storefront-recs: scheduled training %s: %s %s", report.status, report.version, report.message)
    return report.to_dict()


def add_training_job(scheduler: BaseScheduler, app: Flask) -> bool:
    """Add the training job per the app's config; False when training is not scheduled."""
    trigger = make_trigger(app.config)
    if trigger is None:
        return False
    scheduler.add_job(
        scheduled_train, trigger, args=[app], id=JOB_ID, replace_existing=True,
        max_instances=1, coalesce=True, misfire_grace_time=3600,
    )
    return True


def scheduled_purge(app: Flask) -> dict[str, Any]:
    """The retention job: delete events older than ``RECS_RETENTION_DAYS`` (in batches)."""
    with app.app_context():
        report = state_of(app).recs.purge_expired_events()
    log.info("storefront-recs: retention purge deleted %s", report.events)
    return {"events": dict(report.events), "identities": report.identities, "tables": dict(report.tables)}


def add_retention_job(scheduler: BaseScheduler, app: Flask) -> bool:
    """Add the daily retention purge (``RECS_RETENTION_CRON``, UTC); False when switched off."""
    cron = app.config.get("RECS_RETENTION_CRON")
    if not cron:
        return False
    scheduler.add_job(
        scheduled_purge, CronTrigger.from_crontab(cron, timezone="UTC"), args=[app], id=RETENTION_JOB_ID,
        replace_existing=True, max_instances=1, coalesce=True, misfire_grace_time=6 * 3600,
    )
    return True


def build_scheduler(app: Flask, *, blocking: bool) -> BaseScheduler:
    """A configured scheduler (blocking for ``flask recs scheduler``, background when embedded)."""
    scheduler: BaseScheduler = BlockingScheduler(timezone="UTC") if blocking else BackgroundScheduler(timezone="UTC")
    add_training_job(scheduler, app)
    add_retention_job(scheduler, app)
    return scheduler


def take_process_lock(directory: str) -> bool:
    """Take an exclusive, non-blocking lock file in ``directory``, held until this process exits.

    A second attempt fails even in the same process: one scheduler per model directory.
    """
    path = os.path.join(os.path.abspath(directory), LOCK_FILE)
    os.makedirs(directory, exist_ok=True)
    handle = open(path, "a")  # noqa: SIM115 -- kept open: the lock lives as long as the process
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return False
    _lock_handles.append(handle)
    return True


def start_embedded(app: Flask) -> BackgroundScheduler | None:
    """Start a background scheduler in this process if it wins the lock; else return None."""
    if make_trigger(app.config) is None:
        return None
    if not take_process_lock(app.config["RECS_MODEL_DIR"]):
        log.info("storefront-recs: another process runs the embedded scheduler")
        return None
    scheduler = build_scheduler(app, blocking=False)
    assert isinstance(scheduler, BackgroundScheduler)
    scheduler.start()
    state_of(app).scheduler = scheduler
    log.info("storefront-recs: embedded scheduler started in process %s", os.getpid())
    return scheduler
