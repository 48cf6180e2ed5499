"""What a click on an email link does: read the token, choose where to send the visitor (the
item's own page from the catalogue, or its best available similar item when it went out of
stock), and record the click with its campaign."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Engine, Table, insert

from ..db import utcnow
from ..models import EmailClick
from ..privacy.suppression import Suppressions
from ..serving.catalog_cache import CachedItem
from ..serving.recommender import Recommender
from ..serving.rules import Filters
from ..tracking.identity import Visitor
from ..tracking.ingest import Limits, store_events, validate_events
from .links import shop_target
from .tokens import ClickToken

clicks = cast(Table, EmailClick.__table__)
SUBSTITUTES_LOOKED_AT = 8


@dataclass(frozen=True)
class Destination:
    """Where a click goes: ``location`` is a shop path or a URL on the shop's host."""

    location: str
    item_id: str | None  # the item whose page it is (None: the home page)
    substituted: bool = False


def destination(rec: Recommender, token: ClickToken, public_url: str, home: str,
                substitute: bool = True) -> Destination:
    """The clicked item's page; if it is out of stock (and ``substitute`` is on) the best
    available similar item's; the home page when neither has a safe shop URL."""
    rec.catalog.refresh()
    item = rec.catalog.get(token.item_id)
    if item is not None and item.available:
        return _page(item, public_url, home)
    if substitute:
        for other in rec.similar(token.item_id, SUBSTITUTES_LOOKED_AT, Filters()).items:
            location = shop_target(other.url, public_url)
            if location is not None:
                return Destination(location, other.item_id, substituted=True)
    if item is not None:  # out of stock, no substitute: its own page still says so best
        return _page(item, public_url, home)
    return Destination(home, None)


def _page(item: CachedItem, public_url: str, home: str) -> Destination:
    location = shop_target(item.url, public_url)
    return Destination(location, item.id) if location is not None else Destination(home, None)


def record_click(engine: Engine, limits: Limits, suppressions: Suppressions, token: ClickToken,
                 anonymous_id: str | None, target: Destination) -> bool:
    """Store the click as a ``click`` event (the normal ingest path: validation, suppression)
    and in ``recs_email_clicks`` for attribution. False when nothing was stored."""
    raw: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "type": "click",
        "item_id": token.item_id,
        "context": {"widget": "email", "campaign": token.campaign, "position": token.position},
    }
    valid, rejected = validate_events([raw], limits)
    if rejected:
        return False
    visitor = Visitor(user_key=token.user_key, anonymous_id=anonymous_id)
    with engine.begin() as conn:
        accepted, _ = store_events(conn, valid, visitor, source="email", suppressions=suppressions)
        if not accepted:
            return False
        conn.execute(insert(clicks).values(
            user_key=token.user_key, anonymous_id=anonymous_id, campaign=token.campaign,
            item_id=token.item_id, target_item_id=target.item_id if target.substituted else None,
            position=token.position, clicked_at=utcnow(),
        ))
    return True
