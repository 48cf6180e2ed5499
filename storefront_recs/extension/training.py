"""``recs.train()`` and ``recs.evaluate()``: the training pipeline's public face."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask

from ..db import utcnow
from ..engine.report import TrainReport
from ..engine.run_safety import fail_dead_runs
from ..engine.train import Progress, TrainSettings, run_pipeline
from ..engine.train import train as run_training
from ..serving.model import ModelBundle, ServingStore
from .core import RecsCore
from .privacy import erase_late_erasures


class TrainingAPI(RecsCore):
    """Training methods of ``Recs``."""

    def init_app(self, app: Flask) -> None:
        super().init_app(app)
        if app.config.get("RECS_EMBEDDED_SCHEDULER"):
            from ..scheduler import start_embedded

            start_embedded(app)

    def train(self, trigger: str = "manual", *, progress: Progress | None = None) -> TrainReport:
        """Train every model on the stored events and publish a new bundle.

        Returns a :class:`TrainReport` (``version``, ``metrics``, ``published``, ``timings``...).
        Its ``status`` is ``published``, ``rejected`` (quality gate: the serving model stays),
        ``failed`` (the error is in ``message`` and the run record; the serving model stays) or
        ``skipped`` (another run held the training lease; nothing recorded).
        """
        with self._context() as state:
            started = utcnow()
            report = run_training(
                state.checked_engine(), state.bundle_store, TrainSettings.from_config(state.config),
                trigger=trigger, progress=progress,
            )
            if report.published and report.version:
                # people erased while it trained may be in it (serving masks them): out of its files too
                erase_late_erasures(state, report.version, started - timedelta(seconds=1))
            return report

    def evaluate(self, *, progress: Progress | None = None) -> TrainReport:
        """Fit on a time split and report metrics vs popularity, without publishing anything."""
        with self._context() as state:
            return run_pipeline(
                state.checked_engine(), state.bundle_store, TrainSettings.from_config(state.config),
                publish=False, progress=progress,
            )

    def model_bundle(self) -> ModelBundle | None:
        """The bundle this process serves now (reloaded within a second of a new publish)."""
        return self._state().bundle_store.current()

    def _bundle_store(self) -> ServingStore:
        return self._state().bundle_store

    def model_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest training runs, newest first, as dicts."""
        from sqlalchemy import select

        from ..models import ModelRun

        with self._context() as state:
            fail_dead_runs(state.checked_engine())  # a run whose process died shows as failed
        with self._context() as state, state.checked_engine().connect() as conn:
            rows = conn.execute(select(*ModelRun.__table__.c).order_by(ModelRun.id.desc()).limit(limit)).mappings().all()
            return [dict(row) for row in rows]
