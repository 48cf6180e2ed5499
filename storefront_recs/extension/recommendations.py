"""``recs.similar_items()``, ``recs.for_you()`` and the other recommendation verbs."""

from __future__ import annotations

from typing import Any

from ..serving.recommendation import Recommendation
from ..serving.recommender import Answer
from ..serving.rules import make_filters
from ..tracking.identity import Visitor, checked_id
from .core import RecsCore


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
            return state.recommender.trending(n, make_filters(**filters), context).items

    def recently_viewed(
        self, user_id: Any = None, anonymous_id: str | None = None, n: int = 8, **filters: Any
    ) -> list[Recommendation]:
        with self._context() as state:
            visitor = self._visitor(user_id, anonymous_id)
            return state.recommender.recently_viewed(visitor, n, make_filters(**filters)).items

    def bought_together(self, item_id: str, n: int = 8, **filters: Any) -> list[Recommendation]:
        with self._context() as state:
            return state.recommender.bought_together(item_id, n, make_filters(**filters)).items

    # -- answers with metadata, used by the HTTP API and widgets --------------------------------
    def similar_answer(self, item_id: str, n: int = 8, **filters: Any) -> Answer:
        with self._context() as state:
            return state.recommender.similar(item_id, n, make_filters(**filters))

    def for_you_answer(self, visitor: Visitor, n: int = 8, context: dict[str, Any] | None = None,
                       **filters: Any) -> Answer:
        with self._context() as state:
            return state.recommender.for_you(visitor, n, make_filters(**filters), context)

    def _visitor(self, user_id: Any, anonymous_id: str | None) -> Visitor:
        with self._context() as state:
            return Visitor(user_key=None if user_id is None else state.user_key(user_id),
                           anonymous_id=None if anonymous_id is None else checked_id(anonymous_id))
