"""Purchases attributed to email campaigns: a purchase made within the window after an email
click by the same person (user key) or browser (anonymous id) counts for the campaign of the
latest such click (last-click attribution, ``tracking.attribution``). Reads clicks by their
(campaign, clicked_at) / clicked_at index and the purchases of those people by the events'
(user_key, ts) / (anonymous_id, ts) indexes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Engine, Table, select

from ..models import EmailClick, Event
from ..tracking.attribution import LastClick
from ..tracking.revenue import RevenuePolicy

clicks = cast(Table, EmailClick.__table__)
events = cast(Table, Event.__table__)
CHUNK = 500


@dataclass
class CampaignAttribution:
    campaign: str
    clicks: int = 0
    clickers: int = 0  # distinct people who clicked
    purchases: int = 0  # distinct orders (purchase events) attributed
    items: int = 0  # purchase lines attributed
    revenue: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"campaign": self.campaign, "clicks": self.clicks, "clickers": self.clickers,
                "purchases": self.purchases, "items": self.items, "revenue": round(self.revenue, 2)}


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    items = sorted(values)
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def email_attribution(engine: Engine, campaign: str | None = None, since: datetime | None = None,
                      until: datetime | None = None, window: timedelta = timedelta(days=7),
                      revenue_policy: RevenuePolicy | None = None) -> list[dict[str, Any]]:
    """Per campaign (sorted by name): clicks, clickers, purchases, items and revenue of the
    clicks made in ``[since, until)``. Each purchase line counts once, for the latest click
    before it; purchases count as ``revenue_policy`` says."""
    policy = revenue_policy or RevenuePolicy()
    stmt = select(clicks.c.user_key, clicks.c.anonymous_id, clicks.c.campaign, clicks.c.clicked_at)
    if campaign is not None:
        stmt = stmt.where(clicks.c.campaign == campaign)
    if since is not None:
        stmt = stmt.where(clicks.c.clicked_at >= since)
    if until is not None:
        stmt = stmt.where(clicks.c.clicked_at < until)
    with engine.connect() as conn:
        rows = conn.execute(stmt.order_by(clicks.c.clicked_at, clicks.c.id)).all()
        if not rows:
            return []
        first, last = rows[0].clicked_at, rows[-1].clicked_at + window
        counted_origins = policy.origins(conn, first, last)
        purchases = [line for line in _purchases(conn, {r.user_key for r in rows},
                                                 {r.anonymous_id for r in rows if r.anonymous_id},
                                                 first, last).values()
                     if line["origin"] in counted_origins]
    results: dict[str, CampaignAttribution] = {}
    clickers: dict[str, set[str]] = {}
    for row in rows:
        result = results.setdefault(row.campaign, CampaignAttribution(row.campaign))
        result.clicks += 1
        clickers.setdefault(row.campaign, set()).add(row.user_key)
    # clicks and purchase lines in time order, a click before a purchase at the same instant
    stream = sorted([(row.clicked_at, 0, n) for n, row in enumerate(rows)]
                    + [(line["ts"], 1, n) for n, line in enumerate(purchases)])
    last_click = LastClick[str](window)
    orders: dict[str, set[str]] = {}
    for ts, kind, n in stream:
        if kind == 0:
            click = rows[n]
            last_click.click(_people(click.user_key, click.anonymous_id), ts, click.campaign)
            continue
        purchase = purchases[n]
        credited = last_click.credit(_people(purchase["user_key"], purchase["anonymous_id"]), ts)
        if credited is None:
            continue
        result = results[credited]
        result.items += 1
        result.revenue += policy.value(purchase["origin"], purchase["value"])
        orders.setdefault(credited, set()).add(f"{purchase['origin']}:{purchase['event_id']}")
    for name, result in results.items():
        result.clickers = len(clickers[name])
        result.purchases = len(orders.get(name, ()))
    return [results[name].to_dict() for name in sorted(results)]


def _purchases(conn: Any, user_keys: set[str], anonymous_ids: set[str], first: datetime,
               last: datetime) -> dict[tuple[str, int, str], dict[str, Any]]:
    """Purchase lines of these people between the first click and the last click + window."""
    columns = (events.c.event_id, events.c.line_no, events.c.user_key, events.c.anonymous_id, events.c.value,
               events.c.ts, events.c.origin)
    found: dict[tuple[str, int, str], dict[str, Any]] = {}
    for column, values in ((events.c.user_key, user_keys), (events.c.anonymous_id, anonymous_ids)):
        for chunk in _chunks(values):
            stmt = select(*columns).where(column.in_(chunk), events.c.ts >= first, events.c.ts <= last,
                                          events.c.type == "purchase")
            for row in conn.execute(stmt):
                found[(row.event_id, row.line_no, row.origin)] = dict(row._mapping)
    return found


def _people(user_key: str | None, anonymous_id: str | None) -> tuple[tuple[str, str] | None, ...]:
    """The keys a click or purchase is known under: its person and its browser."""
    return (("user", user_key) if user_key else None, ("anon", anonymous_id) if anonymous_id else None)
