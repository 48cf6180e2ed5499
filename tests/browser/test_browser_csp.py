"""A shop behind Flask-Talisman with a strict Content-Security-Policy (script-src 'self' plus a
per-request nonce, no 'unsafe-inline' anywhere), in Chromium: recs_snippet() takes the nonce by
itself, widgets render, events are stored exactly once, and the event endpoint refuses a
cross-site POST while it accepts a same-origin one without cookies."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import BrowserClient
from flask import Flask, render_template_string, session
from flask_talisman import Talisman
from sqlalchemy import select
from werkzeug.serving import make_server

from storefront_recs import Recs
from storefront_recs import db as dbmod
from storefront_recs.models import RefusedRequest

from .conftest import EVENTS_PATH, LiveShop, goto, wait_for

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
}
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ item_id }}</title>
{{ recs_snippet() }}
<link rel="stylesheet" href="{{ url_for('storefront_recs.static', filename='storefront_recs/recs.css') }}">
</head><body>
<main data-recs-item-id="{{ item_id }}"><h1>{{ item_id }}</h1><button id="add">Add to cart</button></main>
<section data-recs-widget="trending" id="trending-js" data-limit="3" hidden><h2>Trending</h2></section>
{{ recs_widget("trending", n=3, title="Trending, rendered by the server") }}
<script nonce="{{ csp_nonce() }}">
document.getElementById('add').addEventListener('click', function () {
  recs('track', 'add_to_cart', {item_id: {{ item_id|tojson }}}); recs('flush')
})
</script>
</body></html>"""
# An attacker's page on another site: posts an event to the shop with the visitor's cookies.
ATTACK = """<!doctype html><html><body><script>
fetch(%s, {method: 'POST', mode: 'no-cors', credentials: 'include', headers: {'Content-Type': 'text/plain'},
  body: JSON.stringify({events: [{event_id: crypto.randomUUID(), type: 'purchase', item_id: 'sku-0'}]})})
</script></body></html>"""
# Collect every CSP violation, from before the first script on the page runs.
WATCH_CSP = """window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI))"""


def talisman_shop(folder: Path, order: str) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="shop-secret", RECS_DATABASE_URI=f"sqlite:///{folder / 'recs.sqlite3'}",
                      RECS_MODEL_DIR=str(folder / "models"))
    app.test_client_class = BrowserClient
    recs = Recs()
    talisman = Talisman()
    options = {"force_https": False, "session_cookie_secure": False, "content_security_policy": POLICY,
               "content_security_policy_nonce_in": ["script-src"]}
    if order == "talisman-first":
        talisman.init_app(app, **options)
    recs.init_app(app)
    if order == "recs-first":
        talisman.init_app(app, **options)
    recs.user_loader(lambda: session.get("user_id"))

    @app.get("/p/<item_id>")
    def product(item_id: str) -> str:
        return render_template_string(PAGE, item_id=item_id)

    @app.get("/favicon.ico")
    def favicon() -> tuple[str, int]:
        return "", 204

    dbmod.upgrade(app.extensions["storefront_recs"].engine)
    with app.app_context():
        recs.catalog.upsert([{"id": f"sku-{i}", "title": f"Item {i}", "url": f"/p/sku-{i}", "price": 2.0 + i}
                             for i in range(6)])
        for user in range(4):
            for i in range(user + 2):
                recs.track("view", user_id=f"u{user}", item_id=f"sku-{i}")
    return app


@pytest.fixture(params=["talisman-first", "recs-first"])
def csp_shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveShop]:
    shop = LiveShop(talisman_shop(tmp_path, request.param))
    yield shop
    shop.stop()


class AttackerSite:
    """Another site (http://localhost:PORT, while the shop is http://127.0.0.1:PORT)."""

    def __init__(self, target: str) -> None:
        body = (ATTACK % json.dumps(target)).encode()

        def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
            start_response("200 OK", [("Content-Type", "text/html")])
            return [body]

        self.server = make_server("127.0.0.1", 0, wsgi, threaded=True)
        self.url = f"http://localhost:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


def record_event_posts(shop: LiveShop) -> list[dict[str, Any]]:
    """The Origin, Sec-Fetch-Site and whether cookies came, of each event POST the shop receives."""
    posts: list[dict[str, Any]] = []
    inner = shop.app.wsgi_app

    def recording(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"] == EVENTS_PATH:
            posts.append({"origin": environ.get("HTTP_ORIGIN"), "sec-fetch-site": environ.get("HTTP_SEC_FETCH_SITE"),
                          "cookie": bool(environ.get("HTTP_COOKIE"))})
        return inner(environ, start_response)

    shop.app.wsgi_app = recording  # type: ignore[method-assign]
    return posts


def refused(shop: LiveShop) -> dict[str, int]:
    with shop.app.extensions["storefront_recs"].engine.connect() as conn:
        rows = conn.execute(select(RefusedRequest.reason, RefusedRequest.count)).all()
    return {row[0]: row[1] for row in rows}


def test_a_strict_csp_shop_runs_the_snippet_shows_widgets_and_stores_events_once(
    csp_shop: LiveShop, context: Any
) -> None:
    shop = csp_shop
    page = context.new_page()
    page.add_init_script(WATCH_CSP)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    with page.expect_response(lambda r: r.url.startswith(shop.url + "/p/")) as first:
        goto(page, f"{shop.url}/p/sku-1")
    policy = first.value.headers["content-security-policy"]
    assert "'nonce-" in policy and "unsafe-inline" not in policy

    # The JS widget filled itself from the API, the server's widget is there, styled by a file.
    page.wait_for_selector("#trending-js[data-recs-state=ready]")
    assert page.eval_on_selector_all("#trending-js [data-recs-item]", "els => els.length") == 3
    assert page.eval_on_selector_all("section.recs-widget:not(#trending-js) [data-recs-item]",
                                     "els => els.length") == 3
    assert page.eval_on_selector(".recs-list", "el => getComputedStyle(el).display") == "grid"

    page.click("#add")
    wait_for(lambda: shop.events("add_to_cart"), what="the add_to_cart event")
    wait_for(lambda: len(shop.events("impression")) >= 6, what="the impressions")
    page.goto(f"{shop.url}/p/sku-2")  # pagehide: whatever waits goes by sendBeacon
    page.wait_for_function("() => window.recs && window.recs.loaded === true")
    page.evaluate("() => recs('flush')")

    def web(kind: str) -> list[Any]:
        return [e for e in shop.events(kind) if e.source == "web"]

    wait_for(lambda: len(web("page_view")) == 2 and len(web("view")) == 2, what="the second page's events")
    violations = page.evaluate("() => window.__violations")
    page.close()

    # Exactly once each: the page views, product views and the cart, whatever path they took.
    ids = [e.event_id for e in shop.events() if e.source == "web"]
    assert len(ids) == len(set(ids))
    assert len(web("page_view")) == 2
    assert sorted(e.item_id for e in web("view")) == ["sku-1", "sku-2"]
    assert [e.item_id for e in web("add_to_cart")] == ["sku-1"]
    assert violations == [] and errors == [], (violations, errors)


def test_csp_pages_report_no_violation(csp_shop: LiveShop, context: Any) -> None:
    """Every tag the plugin writes (stub, script, widget markup) passes the policy."""
    page = context.new_page()
    page.add_init_script(WATCH_CSP)
    goto(page, f"{csp_shop.url}/p/sku-3")
    page.wait_for_selector("#trending-js[data-recs-state=ready]")
    assert page.evaluate("() => window.__violations") == []
    nonce = page.eval_on_selector("script[src*='recs.min.js']", "el => el.nonce")
    assert nonce and nonce == page.eval_on_selector("script:not([src])", "el => el.nonce")


def test_a_cross_site_post_is_refused_and_a_cookieless_same_origin_post_accepted(
    csp_shop: LiveShop, browser: Any, context: Any
) -> None:
    shop = csp_shop
    posts = record_event_posts(shop)
    visitor = context.new_page()
    goto(visitor, f"{shop.url}/p/sku-1")  # the visitor now has the shop's cookie
    wait_for(lambda: shop.events("view"), what="the visitor's view")
    assert any(c["name"] == "recs_aid" for c in context.cookies())

    attacker = AttackerSite(shop.url + EVENTS_PATH)
    try:
        evil = context.new_page()
        with evil.expect_response(lambda r: r.url.endswith(EVENTS_PATH)) as answer:
            evil.goto(attacker.url)
        assert answer.value.status == 403
    finally:
        attacker.stop()
    # What the shop's server received (Playwright does not show these headers).
    assert posts[-1] == {"origin": attacker.url.rstrip("/"), "sec-fetch-site": "cross-site", "cookie": False}
    assert refused(shop) == {"cross-site": 1}
    assert shop.events("purchase") == []

    # A page of the shop in a browser with no cookies at all posts without credentials: accepted.
    fresh = browser.new_context()
    try:
        page = fresh.new_page()
        page.goto(f"{shop.url}/p/sku-4")
        result = page.evaluate("""async (path) => {
          const r = await fetch(path, {method: 'POST', credentials: 'omit', headers: {'Content-Type': 'text/plain'},
            body: JSON.stringify({events: [{event_id: crypto.randomUUID(), type: 'search', context: {q: 'tea'}}]})})
          return [r.status, await r.json()]
        }""", EVENTS_PATH)
    finally:
        fresh.close()
    assert result[0] == 200 and result[1]["accepted"] == 1
    assert len(shop.events("search")) == 1
    assert {"origin": shop.url, "sec-fetch-site": "same-origin", "cookie": False} in posts
    assert refused(shop) == {"cross-site": 1}
