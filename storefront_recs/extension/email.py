"""``recs.email_block()``, ``recs.email_blocks()``, ``recs.email_attribution()`` and the
``{{ recs_email_block(...) }}`` Jinja global."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, has_request_context, request

from ..assembly import RecsState, current_state
from ..email.attribution import email_attribution
from ..email.blocks import BlockMaker, BlockOptions, EmailBlock
from ..email.links import public_base
from ..errors import ConfigurationError
from ..tracking.revenue import RevenuePolicy
from .core import RecsCore


class EmailAPI(RecsCore):
    """Email methods of ``Recs``."""

    def init_app(self, app: Flask) -> None:
        super().init_app(app)
        app.jinja_env.globals["recs_email_block"] = recs_email_block

    def email_block(self, user_id: Any, n: int = 4, campaign: str = "email", utm: Mapping[str, str] | None = None,
                    *, heading: str | None = "Picked for you", columns: int = 2, width: int = 600,
                    record: bool = True, **filters: Any) -> EmailBlock:
        """A recommendation block for one person's email: ``.html`` (tables, inlined CSS,
        absolute links), ``.text`` and ``.items``.

        Leaves out what they bought within ``RECS_EMAIL_BOUGHT_WINDOW_DAYS``, items out of stock
        and items sent to them in ``campaign`` within ``RECS_EMAIL_RESEND_DAYS``; people without
        history get popular items. Links go through the signed ``/recs/c/<token>``; ``utm``
        (e.g. ``{"source": "newsletter"}``) is added to the landing page's URL. ``record=False``
        renders a preview that does not count as sent.
        """
        return next(iter(self.email_blocks([user_id], n, campaign, utm, heading=heading, columns=columns,
                                           width=width, record=record, **filters)))[1]

    def email_blocks(self, user_ids: Iterable[Any], n: int = 4, campaign: str = "email",
                     utm: Mapping[str, str] | None = None, *, heading: str | None = "Picked for you",
                     columns: int = 2, width: int = 600, record: bool = True,
                     **filters: Any) -> Iterator[tuple[Any, EmailBlock]]:
        """``(user_id, block)`` for many people (the batch export): the email rules are read
        and the sends recorded per chunk of people."""
        options = BlockOptions(campaign=campaign, n=n, utm=dict(utm or {}), heading=heading, columns=columns,
                               width=width, record=record, filters=filters)
        with self._context() as state:
            yield from block_maker(state).make(user_ids, options)

    def email_attribution(self, campaign: str | None = None, since: datetime | None = None,
                          until: datetime | None = None, window_days: float | None = None) -> list[dict[str, Any]]:
        """Per campaign: clicks, clickers, purchases, items and revenue attributed to email
        clicks made in ``[since, until)``; a purchase counts within ``window_days`` (default
        ``RECS_EMAIL_ATTRIBUTION_DAYS``) after the latest click by the same person."""
        with self._context() as state:
            days = state.config["RECS_EMAIL_ATTRIBUTION_DAYS"] if window_days is None else window_days
            return email_attribution(state.checked_engine(), campaign, since, until, timedelta(days=float(days)),
                                     RevenuePolicy.from_config(state.config))


def recs_email_block(user_id: Any, n: int = 4, campaign: str = "email", **options: Any) -> EmailBlock:
    """Jinja global: ``{% set block = recs_email_block(user.id, campaign="weekly") %}{{ block }}``
    writes the HTML; ``{{ block.text }}`` in the text part."""
    recs = current_state().recs
    block: EmailBlock = recs.email_block(user_id, n=n, campaign=campaign, **options)
    return block


def block_maker(state: RecsState) -> BlockMaker:
    return BlockMaker(state.recommender, state.checked_engine(), state.secret, state.user_key, state.config,
                      resolve_public_url(state.config))


def resolve_public_url(config: Mapping[str, Any]) -> str:
    """``RECS_PUBLIC_URL``, else the current request's root URL (with the prefix the app is mounted
    at, e.g. ``https://shop.example/shop``); emails need absolute links."""
    configured = config.get("RECS_PUBLIC_URL")
    if configured:
        return public_base(configured)
    if has_request_context():
        return public_base(request.url_root)
    raise ConfigurationError("email blocks need absolute links: set RECS_PUBLIC_URL (e.g. https://shop.example)")
