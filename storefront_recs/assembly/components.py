"""The per-app parts the extension assembles and hands down: bundle store, recommender,
experiment registry. Each is built once per app state (one per worker process)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flask import current_app, has_app_context

from ..experiments.registry import ExperimentRegistry
from ..outages import keep_last_good
from ..privacy.erasure import ErasureMask, add_erasure_listener
from ..serving.catalog_cache import CatalogCache
from ..serving.model import ModelBundle, ServingStore
from ..serving.popularity import PopularityIndex
from ..serving.recommender import Recommender

if TYPE_CHECKING:
    from .state import RecsState


def build_bundle_store(config: Mapping[str, Any]) -> ServingStore:
    mode = config["RECS_ANN_MODE"]
    return ServingStore(config["RECS_MODEL_DIR"], ann_mode=None if mode == "auto" else mode,
                       plugin_options={k: v for k, v in config.items() if k.startswith("RECS_")})


def build_recommender(state: RecsState) -> Recommender:
    engine = state.checked_engine()
    store = state.bundle_store
    return Recommender(
        state.config,
        engine,
        store.current,
        CatalogCache(engine, state.config["RECS_CATALOG_REFRESH_SECONDS"]),
        PopularityIndex(engine),
        state.secret,
        is_erased=erased_user_check(state, store.current),
    )


def build_experiment_registry(state: RecsState) -> ExperimentRegistry:
    return ExperimentRegistry(
        state.checked_engine(), list(state.config["RECS_EXPERIMENTS"]),
        float(state.config["RECS_EXPERIMENT_REFRESH_SECONDS"]),
    )


def erased_user_check(state: RecsState, bundle: Callable[[], ModelBundle | None]) -> Callable[[str], bool]:
    """``is_erased(user_key)``: erased users' factors must not be used until the next training.

    This worker masks its own erasures at once (listener) and sees other workers' within a
    second (``recs_erasures``, read at most once a second).
    """
    mask = ErasureMask(state.secret)

    def on_erasure(user_key: str, _receipt: object) -> None:
        if has_app_context() and current_app._get_current_object() is state.app:  # type: ignore[attr-defined]
            mask.mark(user_key)

    add_erasure_listener(on_erasure)
    engine = state.checked_engine()
    trained: dict[str, str | None] = {"version": None}

    def is_erased(user_key: str) -> bool:
        current = bundle()
        try:
            if current is not None and current.version != trained["version"]:
                # Users erased before this model's data was read are not in it.
                took = float(current.manifest.get("timings", {}).get("total", 0)) + 60
                mask.refresh(engine, since=current.created_at - timedelta(seconds=took))
                trained["version"] = current.version
            mask.maybe_refresh(engine)
        except Exception as exc:
            # An outage: nobody can be erased meanwhile (erasing needs the database), so the
            # mask read before it is still whole; without one, fail (serving answers 503).
            keep_last_good("the erasure mask", exc, have_copy=trained["version"] is not None)
        return user_key in mask

    return is_erased
