"""The shop behind a reverse proxy (nginx -> gunicorn) that mounts it at /shop: with werkzeug's
ProxyFix (X-Forwarded-Proto/Host/Prefix) or a plain SCRIPT_NAME, every URL the plugin writes
carries the prefix, the cookies are scoped to it and Secure follows the visitor's real scheme."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, render_template_string, session
from flask.testing import FlaskClient
from werkzeug.middleware.proxy_fix import ProxyFix

from storefront_recs import Recs
from storefront_recs import db as dbmod
from storefront_recs.models import Event

PUBLIC = "https://shop.example"
# What nginx sends for https://shop.example/shop/... (location /shop/ { proxy_pass http://app/; ... })
NGINX = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example", "X-Forwarded-For": "203.0.113.9",
         "X-Forwarded-Prefix": "/shop"}
PAGE = """<!doctype html><html><head>{{ recs_snippet() }}</head><body>
{{ recs_widget("trending", n=3) }}</body></html>"""


def build_shop(folder: Path, **config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="shop-secret", RECS_DATABASE_URI=f"sqlite:///{folder / 'recs.sqlite3'}",
                      RECS_MODEL_DIR=str(folder / "models"), **config)
    recs = Recs(app)
    recs.user_loader(lambda: session.get("user_id"))

    @app.get("/p/<item_id>")
    def product(item_id: str) -> str:
        return render_template_string(PAGE)

    dbmod.upgrade(app.extensions["storefront_recs"].engine)
    with app.app_context():
        # The shop's item URLs as its pages link them (url_for behind the prefix gives /shop/...).
        recs.catalog.upsert([{"id": f"sku-{i}", "title": f"Item {i}", "url": f"/shop/p/sku-{i}",
                              "image_url": f"/shop/img/{i}.png", "price": 3.0} for i in range(5)])
        for user in range(3):
            for i in range(user + 2):
                recs.track("view", user_id=f"u{user}", item_id=f"sku-{i}")
    return app


@pytest.fixture(params=["proxyfix", "script-name"])
def mounted(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Flask, FlaskClient]]:
    """The app and a client that reaches it as https://shop.example/shop/... does."""
    app = build_shop(tmp_path)
    if request.param == "proxyfix":
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_prefix=1)  # type: ignore[method-assign]
        client = FlaskClient(app, app.response_class, use_cookies=True)
        client.environ_base.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in NGINX.items()})
    else:  # gunicorn started with SCRIPT_NAME=/shop (it moves the prefix from PATH_INFO to SCRIPT_NAME)
        inner = app.wsgi_app

        def gunicorn_with_script_name(environ: dict[str, Any], start_response: Any) -> Any:
            environ.update({"SCRIPT_NAME": "/shop", "wsgi.url_scheme": "https", "HTTP_HOST": "shop.example"})
            return inner(environ, start_response)

        app.wsgi_app = gunicorn_with_script_name  # type: ignore[method-assign]
        client = FlaskClient(app, app.response_class, use_cookies=True)
    yield app, client
    app.extensions["storefront_recs"].engine.dispose()


def cookies_of(response: Any) -> dict[str, Any]:
    jar: dict[str, Any] = {}
    for header in response.headers.getlist("Set-Cookie"):
        parsed = SimpleCookie()
        parsed.load(header)
        jar.update(parsed)
    return jar


def test_snippet_and_api_urls_carry_the_prefix_and_the_cookie_is_scoped_and_secure(
    mounted: tuple[Flask, FlaskClient]
) -> None:
    app, client = mounted
    page = client.get("/p/sku-1")
    assert page.status_code == 200
    src = re.search(r'<script async src="([^"]+)"', page.text)
    assert src and src.group(1).startswith("/shop/recs/static/storefront_recs/recs.min.js?v=")
    assert 'data-recs-api="/shop/recs/api/v1"' in page.text
    assert client.get(src.group(1).removeprefix("/shop")).status_code == 200
    spec = client.get("/recs/api/v1/openapi.json").json
    assert "/shop/recs/api/v1/events" in spec["paths"] and "/shop/recs/health" in spec["paths"]
    links = re.findall(r'href="([^"]+)"', page.text)
    assert links and all(link.startswith("/shop/p/") for link in links)

    cookie = cookies_of(page)["recs_aid"]
    assert cookie["path"] == "/shop" and cookie["secure"] and cookie["httponly"]
    assert cookie["samesite"] == "Lax"

    # The snippet's POST from https://shop.example/shop/p/sku-1 is the shop's own origin.
    body = {"event_id": str(uuid.uuid4()), "type": "add_to_cart", "item_id": "sku-1"}
    answer = client.post("/recs/api/v1/events", json=body, headers={"Origin": PUBLIC})
    assert answer.status_code == 200 and answer.json["accepted"] == 1
    assert client.post("/recs/api/v1/events", json=body, headers={"Origin": "http://shop.example"}).status_code == 403

    consent = client.post("/recs/api/v1/consent", json={"consent": False}, headers={"Origin": PUBLIC})
    jar = cookies_of(consent)
    assert jar["recs_consent"]["path"] == "/shop" and jar["recs_consent"]["secure"]
    assert jar["recs_aid"]["path"] == "/shop" and jar["recs_aid"].value == ""  # deleted where it was set


def test_the_cookie_is_not_secure_when_the_visitor_came_over_http(tmp_path: Path) -> None:
    app = build_shop(tmp_path)
    app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1, x_host=1, x_prefix=1)  # type: ignore[method-assign]
    page = app.test_client().get("/p/sku-1", headers={**NGINX, "X-Forwarded-Proto": "http"})
    cookie = cookies_of(page)["recs_aid"]
    assert cookie["path"] == "/shop" and not cookie["secure"]


def test_email_links_carry_the_prefix_with_and_without_public_url(mounted: tuple[Flask, FlaskClient]) -> None:
    app, client = mounted
    recs: Recs = app.extensions["storefront_recs"].recs
    with app.test_request_context("/", base_url="https://shop.example/shop"):  # an email sent from a shop page
        block = recs.email_block("u9", n=2, campaign="weekly")
    assert block.items and all(i.click_url.startswith("https://shop.example/shop/recs/c/") for i in block.items)
    assert all(i.url.startswith("https://shop.example/shop/p/") for i in block.items)

    app.config["RECS_PUBLIC_URL"] = "https://shop.example/shop"  # the batch job has no request
    with app.app_context():
        block = recs.email_block("u8", n=2, campaign="weekly")
    first = block.items[0]
    assert first.click_url.startswith("https://shop.example/shop/recs/c/")
    assert first.image_url.startswith("https://shop.example/shop/img/")

    # Following the link through the proxy lands on the item's page, under the prefix.
    clicked = client.get(first.click_url.removeprefix("https://shop.example/shop"))
    assert clicked.status_code == 302
    assert clicked.headers["Location"].startswith(f"/shop/p/{first.item_id}")
    with app.extensions["storefront_recs"].engine.connect() as conn:
        clicks = conn.execute(Event.__table__.select().where(Event.type == "click")).all()
    assert [c.item_id for c in clicks] == [first.item_id]


def test_a_broken_email_link_sends_home_under_the_prefix(mounted: tuple[Flask, FlaskClient]) -> None:
    _, client = mounted
    page = client.get("/recs/c/not-a-token")
    assert page.status_code == 400
    assert 'href="/shop/"' in page.text
    assert "/shop/recs/static/storefront_recs/page.css" in page.text
