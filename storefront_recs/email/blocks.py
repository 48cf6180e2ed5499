"""Email blocks: pick items per person (email rules on top of for-you), sign a click link per
item, render HTML and text. ``BlockMaker.make`` works on chunks of people for the batch export."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from flask import has_request_context, request

from ..db import utcnow
from ..errors import ConfigurationError, ValidationError
from ..privacy.suppression import Suppressions
from ..serving.api import make_filters, recommender
from ..serving.recommendation import Recommendation
from ..tracking.identity import Visitor
from .links import absolute, public_base, utm_params
from .render import render_html, render_text
from .selection import bought_since, record_sends, sent_since
from .tokens import ClickToken, ClickTokens

if TYPE_CHECKING:
    from ..core import RecsState

CAMPAIGN = re.compile(r"^[^\x00-\x1f\x7f]{1,128}$")
CHUNK = 200


@dataclass(frozen=True)
class EmailItem:
    """One item of a block, as the templates see it."""

    item_id: str
    title: str
    url: str | None  # the item's own page (absolute), for reference; links use click_url
    click_url: str
    image_url: str | None
    price: float | None
    price_text: str | None
    position: int
    reason: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("item_id", "title", "url", "click_url", "image_url", "price",
                                              "position", "reason", "source")}


@dataclass(frozen=True)
class EmailBlock:
    """``html`` (tables, inlined CSS) and ``text`` for one person; ``{{ block }}`` in a Jinja
    template writes the HTML."""

    campaign: str
    items: list[EmailItem]
    html: str
    text: str
    sent_at: datetime = field(default_factory=utcnow)

    def __html__(self) -> str:
        return self.html

    def to_dict(self) -> dict[str, Any]:
        return {"campaign": self.campaign, "items": [item.to_dict() for item in self.items],
                "html": self.html, "text": self.text}


@dataclass(frozen=True)
class BlockOptions:
    """What the caller asks for, the same for every person of a batch."""

    campaign: str
    n: int = 4
    utm: Mapping[str, str] = field(default_factory=dict)
    heading: str | None = "Picked for you"
    columns: int = 2
    width: int = 600
    record: bool = True
    filters: Mapping[str, Any] = field(default_factory=dict)


def resolve_public_url(config: Mapping[str, Any]) -> str:
    """``RECS_PUBLIC_URL``, else the current request's root URL (with the prefix the app is mounted
    at, e.g. ``https://shop.example/shop``); emails need absolute links."""
    configured = config.get("RECS_PUBLIC_URL")
    if configured:
        return public_base(configured)
    if has_request_context():
        return public_base(request.url_root)
    raise ConfigurationError("email blocks need absolute links: set RECS_PUBLIC_URL (e.g. https://shop.example)")


def check_options(options: BlockOptions, max_n: int) -> None:
    if not isinstance(options.campaign, str) or not CAMPAIGN.match(options.campaign):
        raise ValidationError("campaign must be 1 to 128 printable characters", {"campaign": "invalid"})
    if not 1 <= options.n <= max_n:
        raise ValidationError(f"n must be between 1 and {max_n}", {"n": "out of range"})


class BlockMaker:
    """Builds blocks for one app; create one per call or batch (it reads config once)."""

    def __init__(self, state: RecsState) -> None:
        self.state = state
        config = state.config
        self.config = config
        self.public_url = resolve_public_url(config)
        self.click_base = self.public_url + config["RECS_URL_PREFIX"].rstrip("/") + "/c/"
        self.tokens = ClickTokens(state.secret)
        self.recommender = recommender(state)
        self.engine = state.checked_engine()
        self.price_format = str(config["RECS_EMAIL_PRICE_FORMAT"])

    def make(self, user_ids: Iterable[Any], options: BlockOptions,
             now: datetime | None = None) -> Iterator[tuple[Any, EmailBlock]]:
        """``(user_id, block)`` per person, in order; sends are recorded per chunk."""
        check_options(options, int(self.config["RECS_MAX_N"]))
        chunk: list[Any] = []
        for user_id in user_ids:
            chunk.append(user_id)
            if len(chunk) == CHUNK:
                yield from self._chunk(chunk, options, now)
                chunk = []
        if chunk:
            yield from self._chunk(chunk, options, now)

    def _chunk(self, user_ids: list[Any], options: BlockOptions,
               now: datetime | None) -> list[tuple[Any, EmailBlock]]:
        now = now or utcnow()
        config = self.config
        keys = [self.state.user_key(user_id) for user_id in user_ids]
        with self.engine.connect() as conn:
            bought = bought_since(conn, keys, now - timedelta(days=config["RECS_EMAIL_BOUGHT_WINDOW_DAYS"]))
            sent = sent_since(conn, keys, options.campaign, now - timedelta(days=config["RECS_EMAIL_RESEND_DAYS"]))
            suppressed = Suppressions(self.state.secret).user_checker(conn)
        utm = utm_params(options.utm)
        query = "?" + urlencode(utm) if utm else ""
        issued = int(time.time())
        blocks: list[tuple[Any, EmailBlock]] = []
        sends: list[dict[str, Any]] = []
        for user_id, key in zip(user_ids, keys, strict=True):
            excluded = bought.get(key, set()) | sent.get(key, set())
            filters = make_filters(**{**options.filters, "exclude": set(options.filters.get("exclude") or ())
                                      | excluded})
            answer = self.recommender.for_you(Visitor(user_key=key, anonymous_id=None), options.n, filters)
            sealed = self.tokens.seal(key)
            items = [self._item(rec, position, key, sealed, options.campaign, issued, query)
                     for position, rec in enumerate(answer.items)]
            blocks.append((user_id, self._block(items, options)))
            if options.record and not suppressed(key):
                sends.extend({"user_key": key, "campaign": options.campaign, "item_id": item.item_id,
                              "position": item.position, "sent_at": now} for item in items)
        if sends:
            with self.engine.begin() as conn:
                record_sends(conn, sends)
        return blocks

    def _item(self, rec: Recommendation, position: int, user_key: str, sealed: str, campaign: str,
              issued: int, query: str) -> EmailItem:
        token = self.tokens.dumps(ClickToken(user_key, rec.item_id, campaign, position, issued), sealed)
        title = " ".join((rec.title or rec.item_id).split())
        return EmailItem(
            item_id=rec.item_id, title=title, url=absolute(rec.url, self.public_url),
            click_url=self.click_base + token + query, image_url=absolute(rec.image_url, self.public_url),
            price=rec.price, price_text=None if rec.price is None else self.price_format.format(rec.price),
            position=position, reason=rec.reason, source=rec.source,
        )

    def _block(self, items: list[EmailItem], options: BlockOptions) -> EmailBlock:
        extra = {"campaign": options.campaign}
        return EmailBlock(
            campaign=options.campaign,
            items=items,
            html=render_html(items, options.heading, options.columns, options.width, **extra) if items else "",
            text=render_text(items, options.heading, **extra) if items else "",
        )
