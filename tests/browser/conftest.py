"""Browser tests: Debian's Chromium, driven by Playwright, against the example shop served over
real HTTP by werkzeug on 127.0.0.1 (an ephemeral port), one browser for the whole session."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import make_app
from flask import Flask, Response, g, render_template_string
from markupsafe import Markup
from sqlalchemy import select
from werkzeug.serving import make_server

from storefront_recs.models import Event, Item
from storefront_recs.web.snippet import recs_snippet

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
EVENTS_PATH = "/recs/api/v1/events"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
{{ recs_snippet() }}
<script>recs('track', 'search', {context: {query: 'queued before load'}})</script>
<link rel="stylesheet" href="{{ url_for('storefront_recs.static', filename='storefront_recs/recs.css') }}">
<style>
 body { font: 16px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1.5rem; color: #222; }
 .product { display: flex; gap: 2rem; margin-bottom: 2rem; } .product img { width: 16rem; border-radius: .5rem; }
 button { font: inherit; padding: .5rem 1.25rem; background: #1a5fb4; color: #fff; border: 0; border-radius: .25rem; }
 .spacer { height: 2500px; }
 .block h2, .recs-heading { font-size: 1.2rem; margin: 1.5rem 0 .75rem; } .recs-widget { display: block; }
 .compact .recs-title { display: inline; }
</style>
{% if jsonld %}<script type="application/ld+json">{{ jsonld|tojson }}</script>{% endif %}
</head><body>
<header><a href="/">Tiny Shop</a></header>
{{ body|safe }}
{{ recs_snippet() }}{# written once per page: this second call writes nothing #}
{# The same tags again, as a layout that pastes them twice would: they must do no harm. #}
{{ recs_snippet_copy() }}
</body></html>"""


WIDGETS_BODY = """
<main class="product">
  <img src="/img/{{ item_id }}.svg" alt="{{ item.title if item else item_id }}">
  <div><h1>{{ item.title if item else item_id }}</h1>
    {% if item and item.price is not none %}<p class="price">{{ "%.2f"|format(item.price) }} EUR</p>{% endif %}
    <button id="add">Add to cart</button></div>
</main>
<section class="block" data-recs-widget="similar" id="similar-js" data-limit="4" hidden>
  <h2>Similar items</h2></section>
{{ recs_widget("bought-together", item_id=item_id, n=4, title="Often bought together") }}
<section class="block" data-recs-widget="recently-viewed" id="recent-js" data-limit="4" hidden>
  <h2>Recently viewed</h2></section>
{{ recs_widget("recently-viewed", n=4, title="Recently viewed (rendered by the server)") }}
<template id="compact-item"><li class="recs-item compact"><a data-recs-link><strong data-recs-title></strong>
  <em data-recs-price></em></a></li></template>
<section class="block" data-recs-widget="trending" id="trending-js" data-limit="3" data-category="book"
  data-recs-template="compact-item" hidden><h2>Trending in books</h2></section>
"""

SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="320" height="320" viewBox="0 0 320 320">
<rect width="320" height="320" fill="hsl({{ hue }}, 55%, 72%)"/>
<circle cx="160" cy="140" r="70" fill="hsl({{ hue }}, 45%, 52%)"/>
<text x="160" y="280" font-family="sans-serif" font-size="30" text-anchor="middle" fill="#222">{{ label }}</text>
</svg>"""


def snippet_copy() -> Markup:
    """What recs_snippet() wrote, bypassing its once-per-page guard."""
    written = g.pop("recs_snippet_written")
    try:
        return recs_snippet()
    finally:
        g.recs_snippet_written = written


def add_shop_pages(app: Flask) -> None:
    """The shop's own pages: product pages (JSON-LD or attribute), a page with widgets."""
    app.jinja_env.globals["recs_snippet_copy"] = snippet_copy

    @app.get("/p/<item_id>")
    def product(item_id: str) -> str:
        body = render_template_string(
            """<main class="product"><div><h1>{{ item_id }}</h1>
            <label>Quantity <input id="qty" type="number" value="2" min="1"></label>
            <button id="add">Add to cart</button></div></main>
            <script>document.getElementById('add').addEventListener('click', function () {
              recs('track', 'add_to_cart', {item_id: {{ item_id|tojson }}, quantity: +document.getElementById('qty').value})
            })</script>""",
            item_id=item_id,
        )
        jsonld = {"@context": "https://schema.org", "@graph": [
            {"@type": "BreadcrumbList", "itemListElement": []},
            {"@type": "Product", "sku": item_id, "name": f"Product {item_id}"},
        ]}
        return render_template_string(PAGE, title=item_id, body=body, jsonld=jsonld)

    @app.get("/a/<item_id>")
    def product_by_attribute(item_id: str) -> str:
        body = render_template_string('<main data-recs-item-id="{{ i }}"><h1>{{ i }}</h1></main>', i=item_id)
        return render_template_string(PAGE, title=item_id, body=body)

    @app.get("/picks")
    def picks() -> str:
        """A widget the shop marked up itself (data-recs-item, data-recs-token), below the fold."""
        body = """<h1>Our picks</h1><div class="spacer"></div>
        <section data-recs-widget="trending" id="home-picks"><ul class="recs-list" data-recs-list>
        <li data-recs-item="sku-a" data-recs-token="tok-a" data-recs-position="0"><a href="/p/sku-a">A</a></li>
        <li data-recs-item="sku-b" data-recs-token="tok-b" data-recs-position="1"><a href="/p/sku-b">B</a></li>
        </ul></section><div class="spacer"></div>
        <section data-recs-widget="trending" id="far-picks"><ul class="recs-list" data-recs-list>
        <li data-recs-item="sku-far" data-recs-token="tok-far" data-recs-position="0"><a href="/p/sku-far">Far</a></li>
        </ul></section>"""
        return render_template_string(PAGE, title="Picks", body=body)

    @app.get("/w/<item_id>")
    def product_with_widgets(item_id: str) -> str:
        """A product page with widgets: rendered by the snippet and by the server."""
        with app.extensions["storefront_recs"].engine.connect() as conn:
            item = conn.execute(select(Item).where(Item.id == item_id)).first()
        body = render_template_string(WIDGETS_BODY, item=item, item_id=item_id)
        jsonld = {"@context": "https://schema.org", "@type": "Product", "sku": item_id,
                  "name": item.title if item else item_id}
        return render_template_string(PAGE, title=jsonld["name"], body=body, jsonld=jsonld)

    @app.get("/img/<name>.svg")
    def image(name: str) -> Response:
        """A product picture drawn from its name, so that no page needs another host."""
        hue = sum(name.encode()) * 37 % 360
        svg = render_template_string(SVG, hue=hue, label=name[:12])
        return Response(svg, mimetype="image/svg+xml")

    @app.get("/about")
    def about() -> str:
        return render_template_string(PAGE, title="About", body="<h1>About us</h1>")

    @app.get("/sentinel")
    def sentinel() -> str:
        return "ok"


class LiveShop:
    """The app behind a real WSGI server; ``failing`` makes the event endpoint answer 503."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.failing = False
        self.failed_posts = 0
        self.requests: list[str] = []
        self.server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        self.requests.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        if self.failing and environ["PATH_INFO"] == EVENTS_PATH:
            self.failed_posts += 1
            start_response("503 Service Unavailable", [("Content-Type", "application/json")])
            return [json.dumps({"error": "down for this test"}).encode()]
        return self.app(environ, start_response)

    def events(self, type: str | None = None) -> list[Event]:
        query = select(Event).order_by(Event.id)
        if type:
            query = query.where(Event.type == type)
        with self.app.extensions["storefront_recs"].engine.connect() as conn:
            return list(conn.execute(query).all())  # type: ignore[arg-type]

    def model_version(self) -> str | None:
        """The version of the model the shop serves, as its health endpoint tells."""
        return self.app.test_client().get("/recs/health").get_json()["model_version"]  # type: ignore[no-any-return]

    def event_posts(self) -> int:
        return self.requests.count(f"POST {EVENTS_PATH}")

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join()
        self.app.extensions["storefront_recs"].engine.dispose()


def wait_for(condition: Callable[[], Any], timeout: float = 15, what: str = "condition") -> Any:
    """Poll until ``condition()`` is truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def goto(page: Any, url: str) -> None:
    """Open a shop page and wait until recs.min.js has loaded (not only its queue stub)."""
    page.goto(url)
    page.wait_for_function("() => window.recs && window.recs.loaded === true")


def has_visitor_cookie(context: Any) -> bool:
    """The anonymous id issued by the visitor's first page has reached the browser's cookie jar."""
    return any(c["name"] == "recs_aid" for c in context.cookies())


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("RECS_TEST_REQUIRE_BROWSER") == "1":  # set by .ci/run: never skip there
            pytest.fail(message)
        pytest.skip(message)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright_instance: Any) -> Iterator[Any]:
    browser = playwright_instance.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def shop_factory(tmp_path: Path) -> Iterator[Callable[..., LiveShop]]:
    """Start the example shop (SQLite, its own database) with the given RECS_* settings."""
    shops: list[LiveShop] = []

    def start(copy_of: Path | None = None, **config: Any) -> LiveShop:
        """``copy_of``: a folder with a database and models (e.g. a trained shop) to start from."""
        folder = tmp_path / f"shop{len(shops)}"
        if copy_of:
            shutil.copytree(copy_of, folder)
        else:
            folder.mkdir()
        app = make_app(f"sqlite:///{folder / 'recs.sqlite3'}", folder, **config)
        add_shop_pages(app)
        shops.append(LiveShop(app))
        return shops[-1]

    yield start
    for shop in shops:
        shop.stop()


@pytest.fixture
def shop(shop_factory: Callable[..., LiveShop]) -> LiveShop:
    return shop_factory()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    yield context
    context.close()


def watch_requests(page: Any, shop: LiveShop, foreign: list[str]) -> None:
    """Collect every request that does not go to the shop itself (there must be none)."""
    page.on("request", lambda r: None if r.url.startswith(shop.url) else foreign.append(r.url))


@pytest.fixture
def open_page(context: Any) -> Iterator[Callable[[LiveShop], Any]]:
    """Open pages on a shop; the test fails if a page talks to any other host, has a script
    error or opens a dialog (an injected alert() would)."""
    problems: list[str] = []

    def open_on(shop: LiveShop) -> Any:
        page = context.new_page()
        watch_requests(page, shop, problems)
        page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
        page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
        return page

    yield open_on
    assert problems == []


@pytest.fixture
def page(open_page: Callable[[LiveShop], Any], shop: LiveShop) -> Any:
    return open_page(shop)
