"""What the admin dashboard shows besides experiments: training runs, traffic, widgets and
email campaigns (CTR, credited conversion), catalogue coverage and top items."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, func, select

from ..models import Event, Item, ModelRun
from ..tracking.attribution import LastClick
from ..tracking.revenue import RevenuePolicy

events = cast(Table, Event.__table__)
GATE_METRIC = "ndcg@10"
CREDITED_TYPES = ("add_to_cart", "purchase")


def model_runs(conn: Connection, limit: int = 15) -> list[dict[str, Any]]:
    """The latest training runs, newest first, with the gate metric beside popularity's."""
    table = cast(Table, ModelRun.__table__)
    rows = conn.execute(select(table).order_by(table.c.id.desc()).limit(limit)).mappings().all()
    runs = []
    for row in rows:
        metrics = row["metrics"] or {}
        seconds = (row["finished_at"] - row["started_at"]).total_seconds() if row["finished_at"] else None
        runs.append({**row, "metrics": metrics, "timings": row["timings"] or {}, "counts": row["counts"] or {},
                     "seconds": seconds, "ndcg": metrics.get(GATE_METRIC),
                     "popularity_ndcg": metrics.get(f"popularity_{GATE_METRIC}")})
    return runs


def traffic(conn: Connection, since: datetime, until: datetime) -> tuple[list[str], dict[str, list[float]]]:
    """Events per day and type (x labels, one series per type)."""
    day = func.date(events.c.ts)
    rows = conn.execute(select(day, events.c.type, func.count()).where(events.c.ts >= since, events.c.ts <= until)
                        .group_by(day, events.c.type))
    counts: dict[tuple[str, str], int] = {(str(d)[:10], t): int(c) for d, t, c in rows}
    days = [(since.date() + timedelta(days=i)).isoformat() for i in range((until.date() - since.date()).days + 1)]
    types = sorted({t for _, t in counts}, key=lambda t: -sum(c for (_, k), c in counts.items() if k == t))
    return [d[5:] for d in days], {t: [float(counts.get((d, t), 0)) for d in days] for t in types}


@dataclass
class Funnel:
    """Impressions and clicks of one widget or campaign, and what followed its clicks."""

    name: str
    impressions: int = 0
    clicks: int = 0
    carts: int = 0
    orders: set[str] = field(default_factory=set)
    revenue: float = 0.0

    @property
    def ctr(self) -> float:
        return self.clicks / self.impressions if self.impressions else 0.0

    @property
    def conversion(self) -> float:
        """Credited orders per click."""
        return len(self.orders) / self.clicks if self.clicks else 0.0


def funnels(conn: Connection, key: str, since: datetime, until: datetime, window_seconds: float,
            extra_impressions: dict[str, int] | None = None,
            revenue_policy: RevenuePolicy | None = None) -> list[Funnel]:
    """Per value of ``context[key]`` ('widget' or 'campaign'): CTR and last-click credited carts,
    orders and revenue within the attribution window (purchases as ``revenue_policy`` says)."""
    policy = revenue_policy or RevenuePolicy()
    counted_origins = policy.origins(conn, since, until)
    label = events.c.context[key].as_string()
    out: dict[str, Funnel] = {}
    for name, count in (extra_impressions or {}).items():
        out.setdefault(name, Funnel(name)).impressions += count
    shown = conn.execute(select(label, events.c.type, func.count())
                         .where(events.c.type.in_(("impression", "click")), events.c.ts >= since,
                                events.c.ts <= until, label.is_not(None))
                         .group_by(label, events.c.type))
    for name, kind, count in shown:
        funnel = out.setdefault(str(name), Funnel(str(name)))
        if kind == "impression":
            funnel.impressions += int(count)
        else:
            funnel.clicks += int(count)
    last_click = LastClick[str](timedelta(seconds=window_seconds))
    flow = conn.execute(
        select(events.c.type, events.c.event_id, events.c.user_key, events.c.anonymous_id, events.c.ts,
               events.c.value, events.c.origin, label.label("label"))
        .where(events.c.type.in_(("click", *CREDITED_TYPES)), events.c.ts >= since, events.c.ts <= until)
        .order_by(events.c.ts, events.c.id))
    for event in flow:
        who = event.user_key or f"anon:{event.anonymous_id}"
        if event.type == "click":
            if event.label is not None:
                last_click.click([who], event.ts, str(event.label))
            continue
        credited = last_click.credit([who], event.ts)
        if credited is None:
            continue
        funnel = out.setdefault(credited, Funnel(credited))
        if event.type == "add_to_cart":
            funnel.carts += 1
        else:
            if event.origin not in counted_origins:
                continue
            funnel.orders.add(f"{event.origin}:{event.event_id}")
            funnel.revenue += policy.value(event.origin, event.value)
    return sorted(out.values(), key=lambda f: (-f.clicks, -f.impressions, f.name))


def email_sends(conn: Connection, since: datetime, until: datetime) -> dict[str, int]:
    """Items sent per campaign, when the email feature's table is there (its impressions)."""
    from ..models import metadata

    table = metadata.tables.get("recs_email_sends")
    if table is None or "campaign" not in table.c or "sent_at" not in table.c:
        return {}
    rows = conn.execute(select(table.c.campaign, func.count()).where(table.c.sent_at >= since,
                                                                     table.c.sent_at <= until)
                        .group_by(table.c.campaign))
    return {str(c): int(n) for c, n in rows}


def coverage(conn: Connection, since: datetime, until: datetime) -> dict[str, Any]:
    """How much of the active catalogue was recommended, clicked and bought in the period."""
    items = cast(Table, Item.__table__)
    active = int(conn.scalar(select(func.count()).select_from(items).where(items.c.active.is_(True))) or 0)

    def distinct(kind: str) -> int:
        return int(conn.scalar(select(func.count(func.distinct(events.c.item_id)))
                               .where(events.c.type == kind, events.c.ts >= since, events.c.ts <= until)) or 0)

    shown, clicked, bought = distinct("impression"), distinct("click"), distinct("purchase")
    return {"active_items": active, "recommended": shown, "clicked": clicked, "bought": bought,
            "recommended_share": shown / active if active else 0.0}


def top_items(conn: Connection, since: datetime, until: datetime, limit: int = 10) -> list[dict[str, Any]]:
    """Items most clicked from recommendations, with impressions, CTR and purchases."""
    rows = conn.execute(select(events.c.item_id, events.c.type, func.count())
                        .where(events.c.type.in_(("impression", "click", "purchase")), events.c.ts >= since,
                               events.c.ts <= until, events.c.item_id.is_not(None))
                        .group_by(events.c.item_id, events.c.type))
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for item_id, kind, count in rows:
        counts[str(item_id)][kind] += int(count)
    ranked = sorted(counts, key=lambda i: (-counts[i]["click"], -counts[i]["impression"], -counts[i]["purchase"], i))
    ranked = [i for i in ranked if counts[i]["click"] or counts[i]["impression"]][:limit]
    items = cast(Table, Item.__table__)
    titles = dict(conn.execute(select(items.c.id, items.c.title).where(items.c.id.in_(ranked))).all()) if ranked else {}
    return [{"id": i, "title": titles.get(i) or i, "impressions": counts[i]["impression"], "clicks": counts[i]["click"],
             "purchases": counts[i]["purchase"],
             "ctr": counts[i]["click"] / counts[i]["impression"] if counts[i]["impression"] else 0.0}
            for i in ranked]
