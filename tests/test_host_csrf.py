"""A shop with its own CSRF extension (Flask-WTF's CSRFProtect, Flask-SeaSurf), initialised
before or after Recs: the snippet's POSTs work with no exemption written by the shop, the shop's
own forms stay protected, and our POSTs protect themselves by their origin."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, session
from flask.testing import FlaskClient
from flask_seasurf import SeaSurf
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import func, select

from storefront_recs import Recs
from storefront_recs import db as dbmod
from storefront_recs.errors import ConfigurationError
from storefront_recs.models import Event, RefusedRequest

EVENTS = "/recs/api/v1/events"
CONSENT = "/recs/api/v1/consent"
SHOP = "http://localhost"
EXTENSIONS: dict[str, Callable[[], Any]] = {"flask-wtf": CSRFProtect, "seasurf": SeaSurf}


def build_shop(tmp_path: Path, extension: str | None = None, order: str = "extension-first",
               **config: Any) -> Flask:
    """A shop app with a CSRF-protected form of its own, Recs and (optionally) a CSRF extension
    initialised before or after Recs, as shops do in their app factory."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY="shop-secret", CSRF_DISABLE=False,  # SeaSurf is off under TESTING
                      RECS_DATABASE_URI=f"sqlite:///{tmp_path / 'recs.sqlite3'}",
                      RECS_MODEL_DIR=str(tmp_path / "models"), **config)
    csrf = EXTENSIONS[extension]() if extension else None
    recs = Recs()
    if csrf is not None and order == "extension-first":
        csrf.init_app(app)
    recs.init_app(app)
    if csrf is not None and order == "recs-first":
        csrf.init_app(app)
    recs.user_loader(lambda: session.get("user_id"))
    recs.admin_check(lambda: True)

    @app.post("/cart")
    def cart() -> str:
        return "added"

    dbmod.upgrade(app.extensions["storefront_recs"].engine)
    return app


def event(type: str = "view", item_id: str = "sku-1") -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "type": type, "item_id": item_id}


def stored_events(app: Flask) -> int:
    with app.extensions["storefront_recs"].engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(Event)) or 0)


def refused_counts(app: Flask) -> dict[tuple[str, str], int]:
    with app.extensions["storefront_recs"].engine.connect() as conn:
        rows = conn.execute(select(RefusedRequest.endpoint, RefusedRequest.reason, RefusedRequest.count))
        return {(r.endpoint, r.reason): r[2] for r in rows}


def plain_client(app: Flask) -> FlaskClient:
    """A client that sends only the headers a test gives it (no Origin of its own)."""
    return FlaskClient(app, app.response_class, use_cookies=True)


@pytest.mark.parametrize("order", ["extension-first", "recs-first"])
@pytest.mark.parametrize("extension", sorted(EXTENSIONS))
def test_snippet_posts_pass_the_hosts_csrf_extension_which_still_guards_the_shop(
    tmp_path: Path, extension: str, order: str
) -> None:
    app = build_shop(tmp_path, extension, order)
    client = plain_client(app)
    browser = {"Origin": SHOP, "Sec-Fetch-Site": "same-origin"}
    with client.session_transaction() as s:  # a logged-in visitor with a session cookie...
        s["user_id"] = "u1"

    # ...whose snippet posts events and consent the way the browser does: no CSRF token.
    first = client.post(EVENTS, data=json.dumps({"events": [event()]}), content_type="text/plain",
                        headers=browser)
    assert first.status_code == 200, first.text
    assert first.json["accepted"] == 1
    assert client.post(EVENTS, json=event("add_to_cart"), headers=browser).json["accepted"] == 1
    consent = client.post(CONSENT, json={"consent": True}, headers=browser)
    assert consent.status_code == 200 and consent.json == {"consent": True}
    assert stored_events(app) == 2

    # The shop's own form is still protected by its extension: no token, refused.
    refused = client.post("/cart", headers=browser)
    assert refused.status_code in (400, 403)  # Flask-WTF says 400, SeaSurf 403
    assert "added" not in refused.text


@pytest.mark.parametrize("order", ["extension-first", "recs-first"])
@pytest.mark.parametrize("extension", sorted(EXTENSIONS))
def test_the_admin_dashboard_keeps_its_own_csrf_token_under_the_hosts_extension(
    tmp_path: Path, extension: str, order: str
) -> None:
    app = build_shop(tmp_path, extension, order)
    client = plain_client(app)
    page = client.get("/recs/admin/", headers={"Accept": "text/html"})
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    form = {"key": "t1", "name": "Test", "variants": '[{"name": "a", "percent": 50}, {"name": "b", "percent": 50}]'}
    # Without our token: refused by the dashboard itself (not by the shop's extension).
    missing = client.post("/recs/admin/experiments", data=form, headers={"Accept": "application/json"})
    assert missing.status_code == 400
    assert "CSRF token" in missing.json["error"]
    created = client.post("/recs/admin/experiments", data={**form, "csrf_token": token.group(1)})
    assert created.status_code == 303, created.text


def test_a_cross_site_post_is_refused_counted_and_stores_nothing(tmp_path: Path) -> None:
    app = build_shop(tmp_path, "flask-wtf")
    client = plain_client(app)
    with client.session_transaction() as s:
        s["user_id"] = "victim"
    attacks = [
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "https://evil.example"},  # an old browser: no Fetch Metadata
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "null"},  # a sandboxed frame
        {"Referer": "https://evil.example/page"},
        {},  # cookies, but neither Origin nor Referer
    ]
    for headers in attacks:
        answer = client.post(EVENTS, json=event(), headers=headers)
        assert answer.status_code == 403, headers
        assert answer.is_json and answer.json["error"] and answer.json["refused"], headers
    consent = client.post(CONSENT, json={"consent": False}, headers=attacks[0])
    assert consent.status_code == 403 and consent.json["refused"] == "cross-site"
    assert stored_events(app) == 0
    assert refused_counts(app) == {
        ("events", "cross-site"): 2, ("events", "origin"): 2, ("events", "referer"): 1,
        ("events", "no-origin"): 1, ("consent", "cross-site"): 1,
    }
    # The dashboard shows them.
    page = client.get("/recs/admin/", headers={"Accept": "text/html"}).text
    refused = page[page.index('id="refused"'):]
    assert re.search(r"<td>events</td><td>origin</td><td class=\"num\">2</td>", refused)


def test_same_origin_posts_are_accepted_with_or_without_cookies(tmp_path: Path) -> None:
    app = build_shop(tmp_path)
    client = plain_client(app)
    # No cookies at all (a first visit, a server, curl): nothing to forge, accepted.
    assert client.post(EVENTS, json=event()).json["accepted"] == 1
    assert client.get_cookie("recs_aid") is not None  # this answer issued the visitor's id
    # From now on the client carries cookies: it must say where it comes from.
    assert client.post(EVENTS, json=event()).status_code == 403
    assert client.post(EVENTS, json=event(), headers={"Origin": SHOP}).json["accepted"] == 1
    same_site = {"Referer": f"{SHOP}/p/sku-1", "Sec-Fetch-Site": "same-origin"}
    assert client.post(EVENTS, json=event(), headers=same_site).json["accepted"] == 1
    assert client.post(EVENTS, json=event(), headers={"Origin": "http://localhost:80"}).json["accepted"] == 1
    assert stored_events(app) == 4
    # A new visitor on the shop's page, no cookies yet, with its Origin: accepted.
    fresh = plain_client(app)
    assert fresh.post(EVENTS, json=event(), headers={"Origin": SHOP}).json["accepted"] == 1


def test_allowed_origins_and_the_public_url_may_post(tmp_path: Path) -> None:
    app = build_shop(tmp_path, RECS_ALLOWED_ORIGINS=["https://www.shop.example"],
                     RECS_PUBLIC_URL="https://shop.example/")
    client = plain_client(app)
    client.set_cookie("recs_aid", "a" * 24)
    # The shop's public origin, e.g. behind a TLS proxy that the app does not see.
    assert client.post(EVENTS, json=event(), headers={"Origin": "https://shop.example"}).status_code == 200
    listed = {"Origin": "https://www.shop.example", "Sec-Fetch-Site": "cross-site"}
    assert client.post(EVENTS, json=event(), headers=listed).status_code == 200
    other = {"Origin": "https://blog.shop.example", "Sec-Fetch-Site": "same-site"}
    assert client.post(EVENTS, json=event(), headers=other).status_code == 403
    assert client.post(EVENTS, json=event(), headers={"Origin": "http://shop.example"}).status_code == 403
    assert stored_events(app) == 2


@pytest.mark.parametrize("bad", [["shop.example"], ["https://shop.example/path"], "ftp://shop.example", 42])
def test_a_malformed_allowed_origin_is_a_clear_error_at_start(tmp_path: Path, bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="RECS_ALLOWED_ORIGINS"):
        build_shop(tmp_path, RECS_ALLOWED_ORIGINS=bad)
