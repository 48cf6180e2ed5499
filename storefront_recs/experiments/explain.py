""""Why this item": for one visitor and one item, the scores and rules behind its for-you place.

It re-runs the recommender's own steps (each candidate source alone, then the blend, the rules
and the final answer) so that what it shows is what serving does, not a second model of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..serving.candidates import Candidates
from ..serving.recommender import Recommender
from ..serving.rules import Filters
from ..serving.visitor_events import load_history
from ..tracking.identity import Visitor

DEPTH = 50  # how far down the answer the inspector looks


@dataclass
class Explanation:
    item_id: str
    visitor: Visitor
    item: dict[str, Any] | None
    variant: str | None
    history: list[tuple[str, str, str]]  # (item, event type, when), newest first
    sources: list[dict[str, Any]] = field(default_factory=list)  # source, weight, score, reason
    blended: float | None = None
    rule_factor: float = 1.0
    rules: list[str] = field(default_factory=list)  # what the rules did to this item
    position: int | None = None  # 0-based place in the answer, None when not in the top DEPTH
    final: dict[str, Any] | None = None  # score, reason, source as served
    model_version: str | None = None


def explain(recommender: Recommender, visitor: Visitor, item_id: str, *, variant: str | None = None,
            overrides: Mapping[str, Any] | None = None) -> Explanation:
    rec = recommender
    rec.catalog.refresh()
    bundle = rec.bundle()
    settings = rec.settings_for(overrides)
    item = rec.catalog.get(item_id)
    history = load_history(rec.engine, visitor)
    result = Explanation(
        item_id, visitor,
        None if item is None else {"title": item.title, "category": item.category, "price": item.price,
                                   "available": item.available},
        variant, [(i, t, ts.strftime("%Y-%m-%d %H:%M")) for i, t, ts in history.events[:15]],
        model_version=bundle.version if bundle else None,
    )
    if settings.holdout:
        result.rules.append(f"the visitor's variant is a holdout ('{settings.holdout}'): "
                            + ("no recommendations" if settings.holdout == "none" else "popular items only"))
    blend = rec.for_you_blend(settings, bundle, visitor)
    if bundle is not None and not settings.holdout:
        for source, weight in blend.items():
            if weight <= 0:
                continue
            alone = Candidates(bundle.item_ids, bundle.item_index)
            rec._personal_candidates(alone, bundle, visitor, history, DEPTH, {source: weight})
            found = alone.get(item_id)
            result.sources.append({"source": source, "weight": weight, "score": found[0] if found else None,
                                   "reason": found[1] if found else "not among this source's candidates"})
        together = Candidates(bundle.item_ids, bundle.item_index)
        rec._personal_candidates(together, bundle, visitor, history, DEPTH, blend)
        if item_id in together:
            result.blended = together[item_id][0]
    elif bundle is None:
        result.rules.append("no trained model yet: every answer comes from the fallback chain")
    _rules(result, rec, settings.rules, item, history, item_id)
    answer = rec.for_you(visitor, DEPTH, Filters(), overrides=overrides)
    for position, served in enumerate(answer.items):
        if served.item_id == item_id:
            result.position = position
            result.final = {"score": served.score, "reason": served.reason, "source": served.source}
            break
    return result


def _rules(result: Explanation, rec: Recommender, rules: Any, item: Any, history: Any, item_id: str) -> None:
    if item is None:
        result.rules.append("not in the catalogue: never recommended")
        return
    if not item.available:
        result.rules.append("out of stock or inactive: filtered out")
    if item_id in history.in_cart:
        result.rules.append("in the visitor's cart: excluded from for-you")
    if item_id in history.purchased:
        if (item.category or "") in rules.repeat_buy_categories:
            result.rules.append(f"bought before, but '{item.category}' is a repeat-buy category: allowed")
        else:
            result.rules.append("bought before: excluded from for-you")
    factor = rules.boost.get(item.category or "", 1.0) * rules.boost_items.get(item.id, 1.0)
    result.rule_factor = factor
    if factor != 1.0:
        result.rules.append(f"boost rules multiply its score by {factor:g}")
    if item_id in rules.pinned.get("for-you", []):
        result.rules.append("pinned to the top of for-you")
    cap = rules.max_per_category.get("for-you")
    if cap:
        result.rules.append(f"diversity: at most {cap:.0%} of an answer from one category ('{item.category}')")
