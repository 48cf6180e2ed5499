"""Jinja globals: ``{{ recs_snippet() }}`` writes the tracker's tags, ``{{ recs_widget(...) }}``
renders a recommendation widget on the server from ``templates/storefront_recs/widget.html``.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from markupsafe import Markup, escape

from ..assembly import current_state
from ..serving.limits import checked_n
from ..serving.recommendation import WIDGET_KINDS
from ..serving.recommender import Answer
from ..serving.rules import Filters, make_filters
from ..tracking.identity import Visitor, tracking_refused
from .consent import register_consent

SCRIPT = "storefront_recs/recs.min.js"
# Calls made before recs.min.js has loaded wait in recs.q; the script replays them.
STUB = "window.recs=window.recs||function(){(recs.q=recs.q||[]).push(arguments)}"


@cache
def _file_version(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()[:12]


def _attrs(attrs: dict[str, Any]) -> str:
    return "".join(
        f" {name}" if value is True else f' {name}="{escape(value)}"'
        for name, value in attrs.items()
        if value is not None and value is not False
    )


def recs_snippet(nonce: str | None = None) -> Markup:
    """The queue stub and the async script tag, with the tracker's settings as data attributes.

    Written once per page: a second call in the same request gives an empty string. Both tags
    carry the request's CSP nonce: ``nonce`` if given, else Flask-Talisman's (``request.csp_nonce``),
    else ``g.csp_nonce`` (for a shop that makes its own), so a policy without 'unsafe-inline' runs
    them.
    """
    if nonce is None:
        nonce = request_nonce()
    if g.get("recs_snippet_written"):
        return Markup("")
    g.recs_snippet_written = True
    if tracking_refused(request) is None:
        # The page itself carries the visitor's cookie, so the widget calls and the first event
        # post it makes all share one id instead of racing to be issued one each.
        current_state().recs.current_visitor(may_track=True)
    config = current_app.config
    static = os.path.join(current_app.blueprints["storefront_recs"].static_folder or "", SCRIPT)
    script = {
        "async": True,
        "src": url_for("storefront_recs.static", filename=SCRIPT, v=_file_version(static)),
        "nonce": nonce,
        "data-recs-api": url_for("storefront_recs.post_events").rsplit("/", 1)[0],
        "data-recs-cookie": config["RECS_CONSENT_COOKIE"],
        "data-recs-consent": "required" if config["RECS_REQUIRE_CONSENT"] else None,
        "data-recs-dnt": "respect" if config["RECS_RESPECT_DNT"] else None,
    }
    return Markup(f"<script{_attrs({'nonce': nonce})}>{STUB}</script><script{_attrs(script)}></script>")


def request_nonce() -> str | None:
    """The current request's Content-Security-Policy nonce, if the shop made one."""
    return getattr(request, "csp_nonce", None) or g.get("csp_nonce") or None


def recs_widget(
    kind: str, item_id: str | None = None, n: int = 4, title: str | None = None, **filters: Any
) -> Markup:
    """A widget rendered on the server; the snippet then records its impressions and clicks.

    ``filters``: category, min_price, max_price, exclude (as for the JSON API). ``title`` is
    shown as the widget's heading. With no recommendations it renders nothing, and so it does
    when they cannot be had (the error is logged): a widget never breaks the shop's page.
    """
    if kind not in WIDGET_KINDS:
        raise ValueError(f"unknown widget kind {kind!r}; one of {', '.join(WIDGET_KINDS)}")
    if kind in ("similar", "bought-together") and not item_id:
        raise ValueError(f"a {kind} widget needs an item_id")
    n = checked_n(n, current_app.config["RECS_MAX_N"])  # a template's mistake is not swallowed below
    try:
        answer = _answer(kind, item_id, n, make_filters(**filters))
    except Exception:
        current_app.logger.exception("storefront-recs: the %s widget could not be rendered", kind)
        return Markup("")
    items = [
        {**rec.to_dict(), "url": safe_url(rec.url), "image_url": safe_url(rec.image_url)}
        for rec in answer.items
    ]
    return Markup(render_template("storefront_recs/widget.html", kind=kind, item_id=item_id, items=items,
                                  title=title, variant=answer.variant))


def _answer(kind: str, item_id: Any, n: int, filters: Filters) -> Answer:
    """What the JSON endpoint of the same kind would answer this visitor (A/B variant included)."""
    state = current_state()
    recommender = state.recommender

    def visitor() -> Visitor:
        return state.recs.current_visitor(may_track=False)  # reads the cookie, never issues one

    variant = state.variant_for(kind, visitor)
    overrides = variant.overrides if variant else None
    if kind == "similar":
        answer = recommender.similar(item_id, n, filters, overrides)
    elif kind == "bought-together":
        answer = recommender.bought_together(item_id, n, filters, overrides)
    elif kind == "trending":
        answer = recommender.trending(n, filters, None, overrides)
    elif kind == "for-you":
        answer = recommender.for_you(visitor(), n, filters, None, overrides)
    else:
        answer = recommender.recently_viewed(visitor(), n, filters, overrides)
    if variant:
        answer.variant = variant.tag
    return answer


def safe_url(url: Any) -> str | None:
    """The URL if a link or image may use it (http, https or relative), else None."""
    if not isinstance(url, str) or not url.strip():
        return None
    scheme = urlsplit("".join(url.split())).scheme.lower()
    return url.strip() if scheme in ("", "http", "https") else None


def _register_globals(state: BlueprintSetupState) -> None:
    state.app.jinja_env.globals.update(recs_snippet=recs_snippet, recs_widget=recs_widget)


def register_snippet(bp: Blueprint) -> None:
    """The consent endpoint and the Jinja globals, registered with the blueprint."""
    register_consent(bp)
    bp.record_once(_register_globals)
