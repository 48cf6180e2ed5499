"""Who sent an event: a browser (the public endpoint: anyone, untrusted) or the shop itself
(``recs.track``, imports, email clicks). Event ids are unique per origin, so a browser can
never take an id the shop will use (an order id, say): the shop's event always lands."""

from __future__ import annotations

BROWSER = "browser"
SHOP = "shop"
ORIGINS = (BROWSER, SHOP)
BROWSER_SOURCES = frozenset({"web"})


def origin_of(source: str) -> str:
    """The origin of events stored with ``source`` ('web' is the browser's)."""
    return BROWSER if source in BROWSER_SOURCES else SHOP
