"""``recs.email_block()``, ``recs.email_blocks()``, ``recs.email_attribution()`` and the
``{{ recs_email_block(...) }}`` Jinja global."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from flask import current_app

from ..core import RecsCore
from ..tracking.revenue import RevenuePolicy
from .attribution import email_attribution
from .blocks import BlockMaker, BlockOptions, EmailBlock


class EmailAPI(RecsCore):
    """Email methods of ``Recs``."""

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
            yield from BlockMaker(state).make(user_ids, options)

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
    recs = current_app.extensions["storefront_recs"].recs
    block: EmailBlock = recs.email_block(user_id, n=n, campaign=campaign, **options)
    return block
