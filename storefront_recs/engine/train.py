"""The training pipeline: database -> matrix -> models -> evaluation -> bundle -> gate -> publish.

``run_pipeline`` is the pure pipeline (no lease, no run record); ``train`` wraps it in the
training lease and a ``recs_model_runs`` row, and never lets a failure touch the serving model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Engine, insert, update
from threadpoolctl import threadpool_info, threadpool_limits

from .. import leases
from ..config import from_settings, setting
from ..db import utcnow
from ..models import ModelRun
from ..plugins import TRAINERS, plugin
from . import ease as ease_model
from .blend_tuning import (
    DEPTH,
    BlendChoice,
    BlendSettings,
    als_lists,
    select_blend,
    validation_users,
)
from .bundle import BundleParts, BundleStore, new_version, write_parts
from .data import (
    Interactions,
    MatrixConfig,
    describe,
    holdout_split,
    load_catalog,
    load_interactions,
)
from .evaluate import (
    TopLists,
    compare,
    evaluate_scorer,
    factor_scorer,
    holdout_users,
    popularity_scorer,
)
from .fitting import (
    ALSParams,
    fit_bought_together,
    fit_content,
    fit_itemitem,
    fit_popularity,
)
from .plugin_sources import fit_sources, save_sources, source_classes, validation_lists
from .report import TrainReport
from .run_safety import LeaseLost, clean_up_after_dead_runs

log = logging.getLogger(__name__)

STAGES = ("load", "split", "als", "evaluate", "sources", "blend", "ease", "itemitem", "content", "popularity", "write",
          "publish")
GATE_METRIC = "ndcg@10"
Progress = Callable[[str], None]
_T = TypeVar("_T")


@dataclass(frozen=True)
class TrainSettings:
    """Every setting the pipeline reads, taken from the app config once per run."""

    matrix: MatrixConfig = field(default_factory=MatrixConfig)
    als: ALSParams = field(default_factory=ALSParams)
    blend: BlendSettings = field(default_factory=BlendSettings)
    itemitem_k: int = setting("RECS_ITEMITEM_K")
    content_dims: int = setting("RECS_CONTENT_DIMS")
    trending_days: float = setting("RECS_TRENDING_DAYS", float)
    ann_mode: str = setting("RECS_ANN_MODE")
    ann_min_items: int = setting("RECS_ANN_MIN_ITEMS")
    ann_trees: int = setting("RECS_ANN_TREES")
    keep_bundles: int = setting("RECS_KEEP_BUNDLES")
    gate_margin: float = setting("RECS_QUALITY_GATE_MARGIN", float)
    min_interactions: int = setting("RECS_MIN_INTERACTIONS")
    holdout: float = setting("RECS_EVAL_HOLDOUT", float)
    eval_max_users: int = setting("RECS_EVAL_MAX_USERS")
    lease_timeout: float = setting("RECS_LEASE_TIMEOUT", float)
    trainer: str = setting("RECS_TRAINER")
    sources: tuple[str, ...] = setting("RECS_SOURCES", tuple)  # plugin sources to fit
    plugin_options: Mapping[str, Any] = field(default_factory=dict)  # every RECS_* setting, for plugins

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TrainSettings:
        return from_settings(cls, config, matrix=MatrixConfig.from_config(config), als=ALSParams.from_config(config),
                             blend=BlendSettings.from_config(config),
                             plugin_options={k: v for k, v in config.items() if k.startswith("RECS_")})

    def resolved_ann_mode(self, n_items: int) -> str:
        if self.ann_mode in ("exact", "annoy"):
            return self.ann_mode
        return "annoy" if n_items >= self.ann_min_items else "exact"


class _Clock:
    """Times named stages and reports each start to ``progress``."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}
        self._start = time.perf_counter()

    def stage(self, name: str) -> _Clock:
        if self.progress is not None:
            self.progress(name)
        self._name, self._t0 = name, time.perf_counter()
        return self

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        self.timings[self._name] = round(time.perf_counter() - self._t0, 4)

    def total(self) -> float:
        return round(time.perf_counter() - self._start, 4)

    def report(self) -> dict[str, float]:
        """Each finished stage's duration in pipeline order, and the total so far."""
        order = {name: n for n, name in enumerate(STAGES)}
        done = sorted(self.timings.items(), key=lambda kv: order.get(kv[0], len(order)))
        return {**dict(done), "total": self.total()}

    def beside(self, side: ThreadPoolExecutor, name: str, fn: Callable[[], _T]) -> Future[_T]:
        """Run ``fn`` as stage ``name`` in the side thread; its own duration is recorded."""

        def run() -> _T:
            t0 = time.perf_counter()
            try:
                return fn()
            finally:
                self.timings[name] = round(time.perf_counter() - t0, 4)

        return side.submit(run)


def gate_reason(metrics: Mapping[str, float], serving: Mapping[str, Any] | None, margin: float) -> str | None:
    """Why the quality gate refuses these metrics, or None when they may be published."""
    if serving is None or margin < 0:
        return None
    old = (serving.get("metrics") or {}).get(GATE_METRIC)
    new = metrics.get(GATE_METRIC)
    if not old or new is None:
        return None
    floor = old * (1.0 - margin)
    if new < floor:
        return (f"quality gate: {GATE_METRIC} {new:.4f} is below {floor:.4f} (serving "
                f"{serving.get('version')} has {old:.4f}, margin {margin:.0%})")
    return None


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).replace(tzinfo=None).isoformat()


def run_pipeline(
    engine: Engine,
    store: BundleStore,
    settings: TrainSettings,
    *,
    publish: bool = True,
    trigger: str = "manual",
    progress: Progress | None = None,
    may_publish: Callable[[], bool] | None = None,
) -> TrainReport:
    """Train every model, evaluate, and (with ``publish``) write and maybe publish a bundle.

    ``may_publish`` is asked right before publishing (the training lease's ``confirm``): when it
    says no, :class:`LeaseLost` is raised and nothing is published.

    The stages around ALS mostly run on one core, so the models that do not depend on ALS
    (content, popularity, item-item) are fitted in a side thread beside them: popularity and
    content beside the split (and the start of ALS), item-item beside the evaluation and the
    blend choice. BLAS runs on one thread throughout (threadpoolctl's limits are process-wide,
    so threads must not set different ones), except for EASE's factorisation.
    """
    blas_threads = max((pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"),
                       default=1)
    with threadpool_limits(1, "blas"):
        return _pipeline(engine, store, settings, publish, trigger, progress, blas_threads, may_publish)


def _pipeline(engine: Engine, store: BundleStore, settings: TrainSettings, publish: bool, trigger: str,
              progress: Progress | None, blas_threads: int,
              may_publish: Callable[[], bool] | None = None) -> TrainReport:
    clock = _Clock(progress)
    with ThreadPoolExecutor(1, thread_name_prefix="recs-train") as side:
        catalog = side.submit(load_catalog, engine)
        with clock.stage("load"):
            inter = load_interactions(engine, settings.matrix, catalog=catalog.result)
        counts = describe(inter)
        if inter.n_items == 0:
            raise ValueError("nothing to train on: no interaction events and no catalogue items")
        # after the load (whose readers use both cores), beside the split and the start of ALS
        popularity_job = clock.beside(side, "popularity", lambda: (
            fit_popularity(inter, settings.trending_days),
            fit_bought_together(inter, settings.matrix.session_gap_seconds))) if publish else None
        content_job = clock.beside(side, "content", lambda: fit_content(
            inter.catalog, settings.content_dims, settings.als.seed)) if publish else None
        full_job = side.submit(inter.matrix)  # needed after the first ALS fit
        with clock.stage("split"):
            train_m, test_m = holdout_split(inter, settings.holdout, settings.min_interactions)
        p = settings.als
        trainer = plugin(TRAINERS, settings.trainer)(settings.plugin_options)
        source_types = source_classes(settings.sources) if publish else {}
        with clock.stage("als"):
            # the iterations are shared: most on the time split (the evaluated model), the last few
            # on the full matrix from there (the published model), so ALS costs one plain fit
            eval_model = trainer.fit(train_m, p, iterations=max(p.iterations - p.refit_iterations, 1))
            full_m = full_job.result()
            # only a published model needs the refit (``flask recs evaluate`` skips it)
            model = trainer.fit(full_m, p, warm_start=eval_model, iterations=p.refit_iterations) \
                if publish and p.refit_iterations > 0 else eval_model
        with clock.stage("evaluate"):
            users = holdout_users(test_m, settings.eval_max_users, p.seed)
            counts["test_users"] = len(users)
            # the blend choice's ALS lists come from the same scores (its users are a subset); an
            # evaluation alone keeps them too: the same blocks of users and the same selections give
            # the same metrics as a training run bit for bit (BLAS rounds by block on some CPUs)
            blend_users = validation_users(users, settings.blend)
            kept = TopLists(blend_users, DEPTH) if blend_users is not None else None
            # the item-item models are fitted beside the evaluation and the blend choice
            split_similarity = clock.beside(side, "blend_itemitem", lambda: fit_itemitem(
                train_m, settings.blend.itemitem_k).similarity) \
                if publish and blend_users is not None and settings.blend.wants("itemitem") else None
            itemitem_job = clock.beside(side, "itemitem", lambda: fit_itemitem(full_m, settings.itemitem_k)) \
                if publish else None
            ours = evaluate_scorer(factor_scorer(eval_model.user_factors, eval_model.item_factors),
                                   train_m, test_m, users, keep=kept)
            metrics = compare(ours, evaluate_scorer(popularity_scorer(train_m), train_m, test_m, users))
        report = TrainReport(status="evaluated", metrics=metrics, counts=counts)
        if not publish or content_job is None or popularity_job is None or itemitem_job is None:
            report.timings = clock.report()
            return report
        with clock.stage("sources"):  # plugin sources, on the split (for the blend choice) and in full
            split_sources = fit_sources(source_types, train_m, settings.plugin_options) \
                if blend_users is not None else {}
            extra = validation_lists(split_sources, train_m, blend_users, DEPTH) if blend_users is not None else {}
            plugin_sources = fit_sources(source_types, full_m, settings.plugin_options)
        with clock.stage("blend"), threadpool_limits(blas_threads, "blas"):  # EASE on the split
            kept_lists = kept.lists() if kept is not None else None
            als = als_lists(*kept_lists) if kept_lists is not None else None
            choice = select_blend(train_m, test_m, users, eval_model.user_factors, eval_model.item_factors,
                                  (inter.users, inter.items, inter.ts, inter.decay), settings.blend, als=als,
                                  similarity=None if split_similarity is None else split_similarity.result(),
                                  extra=extra)
        blend = choice.weights if choice is not None else settings.blend.configured
        with clock.stage("ease"), threadpool_limits(blas_threads, "blas"):
            ease = ease_model.fit_ease(full_m, settings.blend.ease_lambda, settings.blend.ease_k) \
                if blend.get("ease", 0) > 0 and ease_model.fits(full_m, settings.blend.ease_max_items) else None
        itemitem, content = itemitem_job.result(), content_job.result()
        popularity, together = popularity_job.result()
    version = new_version()
    ann_mode = settings.resolved_ann_mode(inter.n_items)
    staging = store.stage(version)
    try:
        with clock.stage("write"):
            parts = BundleParts(inter.item_ids, inter.user_ids, model.user_factors, model.item_factors,
                                itemitem.similarity, together, content, popularity, ease,
                                None if ease is None else full_m)
            write_parts(staging, parts, ann_mode=ann_mode, trees=settings.ann_trees, seed=p.seed)
            sources = save_sources(plugin_sources, staging)
        with clock.stage("publish"):
            serving = store.serving_manifest()
            refusal = gate_reason(metrics, serving, settings.gate_margin) if len(users) else None
            report.serving_version = None if serving is None else serving.get("version")
            report.timings = clock.report()
            manifest = _manifest(version, inter, counts, settings, metrics, report.timings, ann_mode, trigger)
            manifest["blend"] = _blend_manifest(choice, blend)
            manifest["sources"] = sources
            manifest["trainer"] = trainer.describe()
            if refusal is None:
                if may_publish is not None and not may_publish():
                    raise LeaseLost("the run lost the training lease before publishing: not published")
                store.publish(staging, manifest, activate=True)
                store.prune(settings.keep_bundles)
    except BaseException:
        store.discard(staging)
        raise
    report.timings = clock.report()
    report.version = version
    if refusal is None:
        report.status, report.published = "published", True
        report.serving_version = version
    else:
        store.discard(staging)
        report.status, report.message = "rejected", refusal
    return report


def _manifest(
    version: str, inter: Interactions, counts: dict[str, Any], settings: TrainSettings,
    metrics: dict[str, float], timings: dict[str, float], ann_mode: str, trigger: str,
) -> dict[str, Any]:
    first, last = inter.time_range()
    return {
        "version": version,
        "created_at": utcnow().isoformat(),
        "trigger": trigger,
        "data_range": {"first_event": _iso(first), "last_event": _iso(last)},
        "counts": counts,
        "params": {
            "als": asdict(settings.als),
            "event_weights": dict(settings.matrix.weights),
            "half_life_days": settings.matrix.half_life_days,
            "decay_floor": settings.matrix.decay_floor,
            "dedup_seconds": settings.matrix.dedup_seconds,
            "itemitem_k": settings.itemitem_k,
            "content_dims": settings.content_dims,
            "trending_days": settings.trending_days,
            "holdout": settings.holdout,
            "min_interactions": settings.min_interactions,
        },
        "metrics": metrics,
        "timings": timings,
        "ann_mode": ann_mode,
        "libraries": _library_versions(),
    }


def _blend_manifest(choice: BlendChoice | None, blend: dict[str, float]) -> dict[str, Any]:
    """The for-you blend serving uses with RECS_BLEND_AUTO: chosen on validation, or the configured one."""
    if choice is None:
        return {"weights": dict(blend), "chosen": False}
    return {**choice.manifest(), "chosen": True}


def _library_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("implicit", "annoy", "scikit-learn", "numpy", "scipy")}


# -- the guarded run ----------------------------------------------------------------------------
def train(
    engine: Engine,
    store: BundleStore,
    settings: TrainSettings,
    *,
    trigger: str = "manual",
    progress: Progress | None = None,
) -> TrainReport:
    """One training run under the training lease, recorded in ``recs_model_runs``.

    Returns a ``skipped`` report (and records nothing) when another run holds the lease; a
    failure is recorded as ``failed`` with its error, and the serving bundle stays in place.
    """
    # a scheduled run waits out a dead holder's lease (no heartbeat), so a crash costs no run
    with leases.held_lease(engine, leases.TRAINING_LEASE, settings.lease_timeout,
                           wait_for_dead_holder=trigger == "schedule") as keeper:
        if keeper is None:
            return TrainReport(status="skipped", message="another training run holds the lease",
                               serving_version=store.pointer())
        clean_up_after_dead_runs(engine, store)
        run_id = _start_run(engine, trigger)
        try:
            report = run_pipeline(engine, store, settings, trigger=trigger, progress=progress,
                                  may_publish=keeper.confirm)
        except Exception as exc:
            log.exception("storefront-recs: training run %s failed", run_id)
            report = TrainReport(status="failed", message=f"{type(exc).__name__}: {exc}",
                                 serving_version=store.pointer())
        report.run_id = run_id
        _finish_run(engine, run_id, report)
        return report


def _start_run(engine: Engine, trigger: str) -> int:
    with engine.begin() as conn:
        result = conn.execute(
            insert(ModelRun).values(status="running", trigger=trigger[:32], started_at=utcnow())
            .returning(ModelRun.id)
        )
        return int(result.scalar_one())


def _finish_run(engine: Engine, run_id: int, report: TrainReport) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(ModelRun).where(ModelRun.id == run_id).values(
                status=report.status, version=report.version, finished_at=utcnow(),
                counts=_jsonable(report.counts), metrics=report.metrics or None,
                timings=report.timings or None, message=report.message or None,
            )
        )


def _jsonable(data: dict[str, Any]) -> dict[str, Any] | None:
    if not data:
        return None
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in data.items()}
