"""Jinja globals: ``{{ recs_snippet() }}`` writes the tracker's tags, ``{{ recs_widget(...) }}``
renders a recommendation widget on the server from ``templates/storefront_recs/widget.html``.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, render_template, url_for
from flask.blueprints import BlueprintSetupState
from markupsafe import Markup, escape

from .consent import register_consent

SCRIPT = "storefront_recs/recs.min.js"
# Calls made before recs.min.js has loaded wait in recs.q; the script replays them.
STUB = "window.recs=window.recs||function(){(recs.q=recs.q||[]).push(arguments)}"
WIDGET_KINDS = ("similar", "for-you", "trending", "recently-viewed", "bought-together")


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

    Written once per page: a second call in the same request gives an empty string. Pass
    ``nonce`` when the shop's Content-Security-Policy uses script nonces.
    """
    if g.get("recs_snippet_written"):
        return Markup("")
    g.recs_snippet_written = True
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


def recs_widget(kind: str, item_id: str | None = None, n: int = 4, **options: Any) -> Markup:
    """A widget rendered on the server; the snippet then tracks its impressions and clicks.

    ``options`` reach the template (e.g. ``title="You may also like"``).
    """
    if kind not in WIDGET_KINDS:
        raise ValueError(f"unknown widget kind {kind!r}; one of {', '.join(WIDGET_KINDS)}")
    items = [{**item, "url": safe_url(item.get("url")), "image_url": safe_url(item.get("image_url"))}
             for item in _recommendations(kind, item_id, n)]
    return Markup(
        render_template("storefront_recs/widget.html", kind=kind, item_id=item_id, items=items, **options)
    )


def _recommendations(kind: str, item_id: str | None, n: int) -> list[dict[str, Any]]:
    """The HTTP item dicts (with ``token``) of one widget, from the serving layer."""
    from .. import current_recs

    method = getattr(current_recs, kind.replace("-", "_").replace("similar", "similar_items"))
    args = (item_id,) if kind in ("similar", "bought-together") else ()
    return [rec.to_dict() for rec in method(*args, n=n)]


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
