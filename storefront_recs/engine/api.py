"""``recs.train()`` and ``recs.evaluate()``: the training pipeline's public face."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flask import Flask

from ..core import RecsCore
from ..db import utcnow
from ..privacy.api import erase_late_erasures
from .bundle import BundleStore, ModelBundle
from .report import TrainReport
from .run_safety import fail_dead_runs
from .train import Progress, TrainSettings, run_pipeline
from .train import train as run_training

if TYPE_CHECKING:
    from ..core import RecsState

def bundle_store(state: RecsState) -> BundleStore:
    """The app's :class:`BundleStore`, created once per app state and cached on it."""

    def build() -> BundleStore:
        mode = state.config["RECS_ANN_MODE"]
        return BundleStore(state.config["RECS_MODEL_DIR"], ann_mode=None if mode == "auto" else mode)

    return state.component("bundle_store", build)


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
                state.checked_engine(), bundle_store(state), TrainSettings.from_config(state.config),
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
                state.checked_engine(), bundle_store(state), TrainSettings.from_config(state.config),
                publish=False, progress=progress,
            )

    def model_bundle(self) -> ModelBundle | None:
        """The bundle this process serves now (reloaded within a second of a new publish)."""
        return bundle_store(self._state()).current()

    def _bundle_store(self) -> BundleStore:
        return bundle_store(self._state())

    def model_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest training runs, newest first, as dicts."""
        from sqlalchemy import select

        from ..models import ModelRun

        with self._context() as state:
            fail_dead_runs(state.checked_engine())  # a run whose process died shows as failed
        with self._context() as state, state.checked_engine().connect() as conn:
            rows = conn.execute(select(*ModelRun.__table__.c).order_by(ModelRun.id.desc()).limit(limit)).mappings().all()
            return [dict(row) for row in rows]
