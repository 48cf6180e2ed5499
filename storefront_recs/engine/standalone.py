"""A training run from plain Python: a database URL, a model directory and settings; no Flask
app and no request context (a cron job, a worker of a job queue, a notebook)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..config import apply_defaults, validate
from ..db import is_up_to_date, make_engine
from ..errors import NotMigratedError
from .bundle import BundleStore
from .report import TrainReport
from .train import Progress, TrainSettings, train


def train_from_url(database_url: str, model_dir: str, settings: Mapping[str, Any] | None = None, *,
                   trigger: str = "manual", progress: Progress | None = None) -> TrainReport:
    """Train on the events in ``database_url`` and publish into ``model_dir``, as ``recs.train()``
    does; ``settings`` are ``RECS_*`` keys (the rest take their defaults). The web workers that
    serve ``model_dir`` pick the new bundle up within a second."""
    config: dict[str, Any] = dict(settings or {})
    apply_defaults(config)
    validate(config)
    engine = make_engine(database_url, config["RECS_ENGINE_OPTIONS"])
    try:
        if not is_up_to_date(engine):
            raise NotMigratedError("the storefront-recs tables are missing or out of date: "
                                   "run `flask recs db upgrade` (or storefront_recs.db.upgrade(engine))")
        mode = config["RECS_ANN_MODE"]
        store = BundleStore(model_dir, ann_mode=None if mode == "auto" else mode)
        return train(engine, store, TrainSettings.from_config(config), trigger=trigger, progress=progress)
    finally:
        engine.dispose()
