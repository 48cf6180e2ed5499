"""Per-variant results of an experiment, from the assignments and the events.

Two views, side by side:

- *earned* (intention to treat): every assigned visitor counts, whatever they clicked;
  conversion rate and revenue per visitor from their purchases after assignment. Against the
  holdout this is what recommendations actually earn.
- *credited* (last click): impressions and clicks that carry the variant (``context.variant``),
  and the carts, orders and revenue that followed a recommendation click of that variant
  within ``RECS_ATTRIBUTION_WINDOW`` seconds (the last such click wins).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, func, select

from ..db import utcnow
from ..models import Event, ExperimentAssignment
from ..tracking.attribution import LastClick
from ..tracking.revenue import RevenuePolicy
from . import stats
from .definitions import Experiment

events = cast(Table, Event.__table__)
SRM_THRESHOLD = 0.001
assignments = cast(Table, ExperimentAssignment.__table__)


@dataclass
class VariantResult:
    name: str
    tag: str
    percent: float
    holdout: str | None
    baseline: bool
    visitors: int = 0
    impressions: int = 0
    clicks: int = 0
    converters: int = 0
    revenue: float = 0.0
    credited_carts: int = 0
    credited_orders: int = 0
    credited_revenue: float = 0.0
    revenues: list[float] = field(default_factory=list, repr=False)  # one per visitor
    ctr: stats.Estimate = stats.Estimate(0, 0, 0)
    conversion: stats.Estimate = stats.Estimate(0, 0, 0)
    revenue_per_visitor: stats.Estimate = stats.Estimate(0, 0, 0)
    vs_baseline: dict[str, stats.Comparison | None] = field(default_factory=dict)


@dataclass
class ExperimentResult:
    experiment: Experiment
    variants: list[VariantResult]
    since: datetime
    until: datetime
    confidence: float
    warnings: list[str]

    def variant(self, name: str) -> VariantResult:
        return next(v for v in self.variants if v.name == name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (for the dashboard and scripts)."""
        def est(e: stats.Estimate) -> dict[str, float]:
            return {"value": e.value, "low": e.low, "high": e.high}

        def comp(c: stats.Comparison | None) -> dict[str, Any] | None:
            return None if c is None else {**c.__dict__, "significant": c.significant(self.confidence)}

        return {
            "key": self.experiment.key, "name": self.experiment.name, "status": self.experiment.status,
            "since": self.since.isoformat(), "until": self.until.isoformat(), "confidence": self.confidence,
            "warnings": self.warnings,
            "variants": [
                {"name": v.name, "tag": v.tag, "percent": v.percent, "holdout": v.holdout, "baseline": v.baseline,
                 "visitors": v.visitors, "impressions": v.impressions, "clicks": v.clicks,
                 "converters": v.converters, "revenue": round(v.revenue, 2), "credited_carts": v.credited_carts,
                 "credited_orders": v.credited_orders, "credited_revenue": round(v.credited_revenue, 2),
                 "ctr": est(v.ctr), "conversion": est(v.conversion), "revenue_per_visitor": est(v.revenue_per_visitor),
                 "vs_baseline": {k: comp(c) for k, c in v.vs_baseline.items()}}
                for v in self.variants
            ],
        }


def _window(conn: Connection, experiment: Experiment, now: datetime) -> tuple[datetime, datetime]:
    first = conn.scalar(select(func.min(assignments.c.assigned_at)).where(assignments.c.experiment_id == experiment.id))
    since = experiment.starts_at or first or now
    until = min(experiment.ends_at, now) if experiment.ends_at else now
    return since, until


def experiment_results(conn: Connection, experiment: Experiment, *, window_seconds: float = 7 * 86400,
                       min_visitors: int = 200, confidence: float = 0.95,
                       now: datetime | None = None, revenue_policy: RevenuePolicy | None = None) -> ExperimentResult:
    """Count, attribute and compare every variant of ``experiment``. Purchases count as
    ``revenue_policy`` says (default: the shop's own when it sends them; browser values capped)."""
    now = now or utcnow()
    base = experiment.baseline()
    results = {v.name: VariantResult(v.name, experiment.tag(v.name), v.percent, v.holdout, v.name == base.name)
               for v in experiment.variants}
    since, until = _window(conn, experiment, now)
    policy = revenue_policy or RevenuePolicy()
    counted_origins = policy.origins(conn, since, until)

    # Assigned visitors (rows outside the traffic have variant '').
    person_variant: list[str] = []
    assigned_at: list[datetime] = []
    by_user: dict[str, int] = {}
    by_anon: dict[str, int] = {}
    rows = conn.execute(select(assignments.c.variant, assignments.c.user_key, assignments.c.anonymous_id,
                               assignments.c.assigned_at)
                        .where(assignments.c.experiment_id == experiment.id, assignments.c.variant != "")
                        .order_by(assignments.c.id))
    for row in rows:
        if row.variant not in results:
            continue
        index = len(person_variant)
        person_variant.append(row.variant)
        assigned_at.append(row.assigned_at)
        if row.user_key:
            by_user[row.user_key] = index
        if row.anonymous_id:
            by_anon[row.anonymous_id] = index
        results[row.variant].visitors += 1

    # Impressions and clicks that carry the variant.
    tag_to_name = {r.tag: r.name for r in results.values()}
    tag = events.c.context["variant"].as_string()
    counted = conn.execute(
        select(tag, events.c.type, func.count())
        .where(events.c.type.in_(("impression", "click")), events.c.ts >= since, events.c.ts <= until,
               tag.in_(list(tag_to_name)))
        .group_by(tag, events.c.type)
    )
    for value, kind, count in counted:
        result = results[tag_to_name[value]]
        if kind == "impression":
            result.impressions += int(count)
        else:
            result.clicks += int(count)

    # Carts and purchases: credited to the last recommendation click, and earned per visitor.
    last_click = LastClick[str](timedelta(seconds=window_seconds))
    converters: set[int] = set()
    revenue: dict[int, float] = {}
    credited_orders: dict[str, set[str]] = {name: set() for name in results}
    flow = conn.execute(
        select(events.c.type, events.c.event_id, events.c.user_key, events.c.anonymous_id, events.c.ts,
               events.c.value, events.c.origin, tag.label("variant"))
        .where(events.c.type.in_(("click", "add_to_cart", "purchase")), events.c.ts >= since, events.c.ts <= until)
        .order_by(events.c.ts, events.c.id)
    )
    for event in flow:
        if event.type == "purchase" and event.origin not in counted_origins:
            continue
        value = policy.value(event.origin, event.value)
        person = by_user.get(event.user_key) if event.user_key else None
        if person is None and event.anonymous_id:
            person = by_anon.get(event.anonymous_id)
        key: Any = person if person is not None else (event.user_key or f"anon:{event.anonymous_id}")
        if event.type == "click":
            if event.variant in tag_to_name:
                last_click.click([key], event.ts, tag_to_name[event.variant])
            continue
        credited = last_click.credit([key], event.ts)
        if credited is not None:
            result = results[credited]
            if event.type == "add_to_cart":
                result.credited_carts += 1
            else:
                credited_orders[credited].add(f"{event.origin}:{event.event_id}")
                result.credited_revenue += value
        if event.type == "purchase" and person is not None and event.ts >= assigned_at[person]:
            converters.add(person)
            revenue[person] = revenue.get(person, 0.0) + value

    for index, name in enumerate(person_variant):
        result = results[name]
        result.converters += index in converters
        result.revenues.append(revenue.get(index, 0.0))
    for name, orders in credited_orders.items():
        results[name].credited_orders = len(orders)
    return _compare(experiment, results, since, until, confidence, min_visitors)


def _compare(experiment: Experiment, results: dict[str, VariantResult], since: datetime, until: datetime,
             confidence: float, min_visitors: int) -> ExperimentResult:
    base = results[experiment.baseline().name]
    warnings: list[str] = []
    for result in results.values():
        result.revenue = sum(result.revenues)
        # Clicks can outnumber recorded impressions (an impression is only sent once seen).
        result.ctr = stats.proportion(result.clicks, max(result.impressions, result.clicks), confidence)
        result.conversion = stats.proportion(result.converters, result.visitors, confidence)
        result.revenue_per_visitor = stats.mean(result.revenues, confidence)
        if result.visitors < min_visitors:
            warnings.append(f"{result.name}: {result.visitors} visitors, fewer than the {min_visitors} "
                            "needed before the result means much")
        if result is not base:
            result.vs_baseline = {
                "ctr": stats.two_proportions(result.clicks, max(result.impressions, result.clicks), base.clicks,
                                             max(base.impressions, base.clicks), confidence),
                "conversion": stats.two_proportions(result.converters, result.visitors, base.converters,
                                                    base.visitors, confidence),
                "revenue_per_visitor": stats.two_means(result.revenues, base.revenues, confidence),
            }
    srm = stats.sample_ratio_mismatch([r.visitors for r in results.values()], [r.percent for r in results.values()])
    if srm is not None and srm < SRM_THRESHOLD:
        warnings.append(f"sample ratio mismatch: visitors are not split as the percents say (p={srm:.2g}); "
                        "check assignment and tracking before trusting these results")
    if not base.holdout:
        warnings.append(f"no holdout variant: lift is measured against '{base.name}'")
    return ExperimentResult(experiment, list(results.values()), since, until, confidence, warnings)
