"""``recs.similar_items()``, ``recs.for_you()`` and the other recommendation verbs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flask import current_app, has_app_context

from ..core import RecsCore
from ..engine.api import bundle_store
from ..engine.bundle import ModelBundle
from ..privacy.erasure import ErasureMask, add_erasure_listener
from ..tracking.identity import Visitor, checked_id
from .catalog_cache import CatalogCache
from .popularity import PopularityIndex
from .recommendation import Recommendation
from .recommender import Answer, Recommender
from .rules import Filters

if TYPE_CHECKING:
    from ..core import RecsState

def recommender(state: RecsState) -> Recommender:
    """The app's recommender, created once per app state (one per worker process)."""

    def build() -> Recommender:
        engine = state.checked_engine()
        store = bundle_store(state)
        return Recommender(
            state.config,
            engine,
            store.current,
            CatalogCache(engine, state.config["RECS_CATALOG_REFRESH_SECONDS"]),
            PopularityIndex(engine),
            state.secret,
            is_erased=erased_user_check(state, store.current),
        )

    return state.component("recommender", build)


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
        if current is not None and current.version != trained["version"]:
            # Users erased before this model's data was read are not in it.
            took = float(current.manifest.get("timings", {}).get("total", 0)) + 60
            mask.refresh(engine, since=current.created_at - timedelta(seconds=took))
            trained["version"] = current.version
        mask.maybe_refresh(engine)
        return user_key in mask

    return is_erased


def make_filters(
    category: str | None = None,
    min_price: float | None = None,
    max_price: float | None = None,
    exclude: Iterable[str] | str | None = None,
) -> Filters:
    if isinstance(exclude, str):
        exclude = [part for part in exclude.split(",") if part]
    return Filters(category, min_price, max_price, frozenset(exclude or ()))


class RecommendationAPI(RecsCore):
    """Recommendation methods of ``Recs``; each returns ``list[Recommendation]``."""

    def similar_items(self, item_id: str, n: int = 8, **filters: Any) -> list[Recommendation]:
        """Items like ``item_id`` (collaborative, item-item and content neighbours blended)."""
        return self.similar_answer(item_id, n, **filters).items

    def for_you(
        self,
        user_id: Any = None,
        anonymous_id: str | None = None,
        n: int = 8,
        context: dict[str, Any] | None = None,
        **filters: Any,
    ) -> list[Recommendation]:
        """Personal picks, including events since the last training run. The user wins over the
        anonymous id; a visitor with no history gets context-aware popular items."""
        return self.for_you_answer(self._visitor(user_id, anonymous_id), n, context, **filters).items

    def trending(self, n: int = 8, context: dict[str, Any] | None = None, **filters: Any) -> list[Recommendation]:
        with self._context() as state:
            return recommender(state).trending(n, make_filters(**filters), context).items

    def recently_viewed(
        self, user_id: Any = None, anonymous_id: str | None = None, n: int = 8, **filters: Any
    ) -> list[Recommendation]:
        with self._context() as state:
            visitor = self._visitor(user_id, anonymous_id)
            return recommender(state).recently_viewed(visitor, n, make_filters(**filters)).items

    def bought_together(self, item_id: str, n: int = 8, **filters: Any) -> list[Recommendation]:
        with self._context() as state:
            return recommender(state).bought_together(item_id, n, make_filters(**filters)).items

    # -- answers with metadata, used by the HTTP API and widgets --------------------------------
    def similar_answer(self, item_id: str, n: int = 8, **filters: Any) -> Answer:
        with self._context() as state:
            return recommender(state).similar(item_id, n, make_filters(**filters))

    def for_you_answer(self, visitor: Visitor, n: int = 8, context: dict[str, Any] | None = None,
                       **filters: Any) -> Answer:
        with self._context() as state:
            return recommender(state).for_you(visitor, n, make_filters(**filters), context)

    def _visitor(self, user_id: Any, anonymous_id: str | None) -> Visitor:
        with self._context() as state:
            return Visitor(user_key=None if user_id is None else state.user_key(user_id),
                           anonymous_id=None if anonymous_id is None else checked_id(anonymous_id))
