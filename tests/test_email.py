"""Email blocks: HTML structure and inlined styles, escaping, the email rules, signed click
links (tampering, expiry, open-redirect attempts), out-of-stock substitution, attribution."""

from __future__ import annotations

import base64
import json
import random
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import build_trained_shop, copy_of_shop, make_app
from flask import Flask, render_template_string
from sqlalchemy import func, select, update

from storefront_recs import Recs
from storefront_recs.db import utcnow
from storefront_recs.email.tokens import ClickTokens
from storefront_recs.errors import ConfigurationError
from storefront_recs.models import EmailClick, EmailSend, Event
from storefront_recs.tracking.identity import read_anonymous_cookie

PUBLIC = "https://shop.example"
CATEGORIES = ("tea", "coffee", "books", "garden")
CONFIG = {"RECS_PUBLIC_URL": PUBLIC, "RECS_CATALOG_REFRESH_SECONDS": 0, "RECS_ALS_FACTORS": 8,
          "RECS_ALS_ITERATIONS": 6}


class Tree(HTMLParser):
    """Every start tag with its attributes, in order."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def catalogue(per_category: int = 8) -> list[dict[str, Any]]:
    return [{"id": f"{cat}-{i}", "title": f"{cat.title()} {i}", "url": f"/p/{cat}-{i}",
             "image_url": f"/img/{cat}-{i}.png", "price": 5.0 + i, "category": cat}
            for cat in CATEGORIES for i in range(per_category)]


def seed(recs: Recs, users: int = 40) -> None:
    """Shoppers who each love one category, over the past weeks; item 0 of each is a best seller."""
    rng = random.Random(5)
    recs.catalog.upsert(catalogue())
    start = utcnow() - timedelta(days=20)
    for user in range(users):
        cat = CATEGORIES[user % len(CATEGORIES)]
        for step in range(8):
            item = f"{cat}-{min(int(rng.expovariate(0.4)), 7)}"
            recs.track("view", user_id=f"u{user}", item_id=item, ts=start + timedelta(hours=user * 3 + step))
        recs.track("purchase", user_id=f"u{user}", item_id=f"{cat}-0", ts=start + timedelta(hours=user * 3 + 9))


@pytest.fixture(scope="module")
def trained_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_trained_shop(tmp_path_factory.mktemp("email-shop"), seed, **CONFIG)


@pytest.fixture
def shop(trained_files: Path, tmp_path: Path) -> Flask:
    """A private copy of the trained shop."""
    return copy_of_shop(trained_files, tmp_path, **CONFIG)


@pytest.fixture
def email_app(database_uri: str, tmp_path: Path) -> Flask:
    """An untrained shop with a catalogue, on each database."""
    app = make_app(database_uri, tmp_path, **CONFIG)
    app.extensions["storefront_recs"].recs.catalog.upsert(catalogue(4))
    return app


def recs_of(app: Flask) -> Recs:
    return app.extensions["storefront_recs"].recs  # type: ignore[no-any-return]


def path_of(click_url: str) -> str:
    assert click_url.startswith(PUBLIC + "/recs/c/")
    return click_url.removeprefix(PUBLIC)


def rows(app: Flask, model: Any) -> list[Any]:
    with app.extensions["storefront_recs"].engine.connect() as conn:
        return list(conn.execute(select(model.__table__)).all())


# -- the block --------------------------------------------------------------------------------
def test_block_html_is_tables_with_inlined_styles_absolute_links_and_sized_images(shop: Flask) -> None:
    block = recs_of(shop).email_block("u1", n=4, campaign="weekly", utm={"source": "newsletter"})
    assert [item.position for item in block.items] == [0, 1, 2, 3]
    tree = Tree(block.html)
    assert "<style" not in block.html and "<link" not in block.html and "class=\"recs-email\"" in block.html
    outer = tree.tags[0]
    assert outer[0] == "table" and outer[1]["role"] == "presentation" and outer[1]["width"] == "600"
    assert {"cellpadding", "cellspacing", "border"} <= set(outer[1])
    assert not tree.all("div")  # tables only: what Outlook lays out
    # Every styled element got its CSS inlined from the template's stylesheet.
    for tag, attrs in tree.tags:
        if attrs.get("class", "").startswith("recs-email"):  # type: ignore[union-attr]
            assert attrs.get("style"), f"{tag}.{attrs['class']} has no inline style"
    cells = [a for a in tree.all("td") if a.get("class") == "recs-email-cell"]
    assert len(cells) == 4 and all("padding: 12px" in (c["style"] or "") for c in cells)
    images = tree.all("img")
    assert len(images) == 4
    for image, item in zip(images, block.items, strict=True):
        assert image["src"] == f"{PUBLIC}/img/{item.item_id}.png"
        assert image["width"] == image["height"] == "276"
        assert image["alt"] == item.title and "display: block" in (image["style"] or "")
    links = [a["href"] for a in tree.all("a")]
    assert len(links) == 12 and all(link.startswith(PUBLIC + "/recs/c/") for link in links)  # type: ignore[union-attr]
    assert all(link.endswith("?utm_source=newsletter") for link in links)  # type: ignore[union-attr]
    # The text twin: titles, prices and the same links.
    lines = block.text.splitlines()
    assert lines[0] == "Picked for you"
    for number, item in enumerate(block.items, start=1):
        assert f"{number}. {item.title} - {item.price:,.2f}" in lines
        assert f"   {item.click_url}" in lines


def test_hostile_catalogue_text_is_escaped_and_unsafe_urls_are_dropped(email_app: Flask) -> None:
    recs = recs_of(email_app)
    hostile = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    recs.catalog.upsert([{"id": "evil-1", "title": hostile, "url": "javascript:alert(3)",
                          "image_url": "javascript:alert(4)", "price": 1.0, "category": "tea"},
                         {"id": "evil-2", "title": "Tea & \"biscuits\" <b>bold</b>", "url": "/p/evil-2",
                          "image_url": "//evil.example/x.png\" onload=\"alert(5)", "price": 2.0, "category": "tea"}])
    block = recs.email_block("someone", n=20, campaign="weekly", heading="<i>For you</i>")
    assert {"evil-1", "evil-2"} <= {item.item_id for item in block.items}
    tree = Tree(block.html)
    names = {tag for tag, _ in tree.tags}
    assert names <= {"table", "tbody", "tr", "td", "a", "img"}  # no <script>, <b>, <i> got in
    for _, attrs in tree.tags:
        assert not any(name.startswith("on") for name in attrs)
        assert not any("javascript:" in (value or "") for value in attrs.values())
    assert "&lt;script&gt;" in block.html and "&lt;i&gt;For you&lt;/i&gt;" in block.html
    alts = [a["alt"] for a in tree.all("img")]
    assert hostile not in alts  # its image URL was unsafe: no image at all
    assert all((a["src"] or "").startswith(PUBLIC + "/") for a in tree.all("img"))
    assert 'Tea & "biscuits" <b>bold</b>' in block.text  # the text twin is plain text


def test_jinja_global_writes_the_block_into_the_shops_template(email_app: Flask) -> None:
    with email_app.test_request_context("/"):
        html = render_template_string(
            "<p>Hello</p>{% set block = recs_email_block('u1', n=2, campaign='weekly') %}{{ block }}"
            "<pre>{{ block.text }}</pre>")
    assert html.startswith("<p>Hello</p><table") and html.count("<img") == 2
    assert "&lt;table" not in html  # the HTML is not escaped twice


def test_public_url_is_needed_outside_a_request(tmp_path: Path, sqlite_uri: str) -> None:
    app = make_app(sqlite_uri, tmp_path)
    recs_of(app).catalog.upsert(catalogue(2))
    with pytest.raises(ConfigurationError, match="RECS_PUBLIC_URL"), app.app_context():
        recs_of(app).email_block("u1", campaign="weekly")
    with app.test_request_context("/", base_url="http://localhost:8000"):
        block = recs_of(app).email_block("u1", campaign="weekly")
    assert block.items[0].click_url.startswith("http://localhost:8000/recs/c/")


# -- the email rules ------------------------------------------------------------------------------
def test_email_rules_skip_recent_purchases_out_of_stock_and_recent_sends(tmp_path: Path, sqlite_uri: str) -> None:
    app = make_app(sqlite_uri, tmp_path, **CONFIG, RECS_REPEAT_BUY_CATEGORIES=list(CATEGORIES))
    recs = recs_of(app)
    recs.catalog.upsert(catalogue(4))  # 16 items
    recs.track("purchase", user_id="u1", item_id="tea-1", ts=utcnow() - timedelta(days=10))
    recs.track("purchase", user_id="u1", item_id="tea-2", ts=utcnow() - timedelta(days=200))
    recs.catalog.upsert([{"id": "books-0", "in_stock": False}])
    first = {item.item_id for item in recs.email_block("u1", n=5, campaign="weekly").items}
    assert "tea-1" not in first and "books-0" not in first
    second = {item.item_id for item in recs.email_block("u1", n=5, campaign="weekly").items}
    assert not first & second  # sent in this campaign: not again
    everything = {item.item_id for item in recs.email_block("u1", n=20, campaign="weekly", record=False).items}
    assert everything == {i["id"] for i in catalogue(4)} - first - second - {"tea-1", "books-0"}
    assert "tea-2" in first | second | everything  # bought long before the window
    # Another campaign is not held back by this one; a preview records nothing.
    other = {item.item_id for item in recs.email_block("u1", n=20, campaign="monthly", record=False).items}
    assert first | second <= other
    sends = rows(app, EmailSend)
    assert len(sends) == 10 and {s.campaign for s in sends} == {"weekly"}
    assert all(s.user_key == app.extensions["storefront_recs"].user_key("u1") for s in sends)
    # Sends older than RECS_EMAIL_RESEND_DAYS no longer hold an item back.
    with app.extensions["storefront_recs"].engine.begin() as conn:
        conn.execute(update(EmailSend).values(sent_at=utcnow() - timedelta(days=29)))
    again = {item.item_id for item in recs.email_block("u1", n=20, campaign="weekly", record=False).items}
    assert first | second <= again


def test_a_person_without_history_gets_popular_items(shop: Flask) -> None:
    block = recs_of(shop).email_block("new-person", n=4, campaign="weekly")
    assert len(block.items) == 4 and all(item.source == "fallback" for item in block.items)
    best_sellers = {f"{cat}-0" for cat in CATEGORIES}
    assert len(best_sellers & {item.item_id for item in block.items}) >= 3


def test_a_known_person_gets_personal_picks_without_what_they_bought(shop: Flask) -> None:
    block = recs_of(shop).email_block("u2", n=4, campaign="weekly")  # u2 loves books, bought books-0
    ids = [item.item_id for item in block.items]
    assert "books-0" not in ids and sum(i.startswith("books-") for i in ids) >= 2
    assert any(item.source == "model" for item in block.items)


# -- signed click links ---------------------------------------------------------------------------
def test_a_click_records_the_event_with_its_campaign_and_redirects_to_the_items_page(email_app: Flask) -> None:
    recs = recs_of(email_app)
    block = recs.email_block("alice@example.com", n=3, campaign="weekly", utm={"source": "newsletter"})
    item = block.items[1]
    response = email_app.test_client().get(path_of(item.click_url))
    assert response.status_code == 302
    assert response.headers["Location"] == f"/p/{item.item_id}?utm_source=newsletter"
    assert response.headers["Cache-Control"] == "no-store"
    assert "recs_aid=" in response.headers["Set-Cookie"]
    user_key = email_app.extensions["storefront_recs"].user_key("alice@example.com")
    [event] = [e for e in rows(email_app, Event) if e.type == "click"]
    assert (event.item_id, event.user_key, event.source) == (item.item_id, user_key, "email")
    assert event.anonymous_id and event.context == {"widget": "email", "campaign": "weekly", "position": 1}
    [click] = rows(email_app, EmailClick)
    assert (click.campaign, click.item_id, click.position, click.user_key) == ("weekly", item.item_id, 1, user_key)


def test_the_token_carries_no_user_id_or_user_key_in_clear(email_app: Flask) -> None:
    block = recs_of(email_app).email_block("alice@example.com", n=1, campaign="weekly")
    token = path_of(block.items[0].click_url).removeprefix("/recs/c/")
    payload = base64.urlsafe_b64decode(token.split(".")[0] + "==").decode()
    user_key = email_app.extensions["storefront_recs"].user_key("alice@example.com")
    assert "alice" not in payload and user_key not in payload and "weekly" in json.loads(payload)


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature changed
    lambda t: base64.urlsafe_b64encode(                            # payload changed, old signature
        base64.urlsafe_b64decode(t.split(".")[0] + "==").replace(b'"weekly"', b'"other"')).decode().rstrip("=")
        + "." + t.split(".")[1],
    lambda t: t.split(".")[0],                                      # signature cut off
    lambda t: "not-a-token",
])
def test_a_tampered_token_gets_an_error_page_and_no_redirect(email_app: Flask, mangle: Any) -> None:
    block = recs_of(email_app).email_block("u1", n=1, campaign="weekly")
    token = path_of(block.items[0].click_url).removeprefix("/recs/c/")
    response = email_app.test_client().get("/recs/c/" + mangle(token))
    assert response.status_code == 400 and "Location" not in response.headers
    assert response.mimetype == "text/html" and "This link is not valid" in response.text
    assert not [e for e in rows(email_app, Event) if e.type == "click"] and not rows(email_app, EmailClick)


def test_an_expired_token_gets_an_error_page_and_no_redirect(email_app: Flask) -> None:
    state = email_app.extensions["storefront_recs"]
    max_age = email_app.config["RECS_EMAIL_TOKEN_MAX_AGE"]
    issued = utcnow().timestamp()
    old = ClickTokens(state.secret).make(state.user_key("u1"), "tea-0", "weekly", 0, now=issued - max_age - 60)
    fresh = ClickTokens(state.secret).make(state.user_key("u1"), "tea-0", "weekly", 0, now=issued - max_age + 600)
    client = email_app.test_client()
    response = client.get(f"/recs/c/{old}")
    assert response.status_code == 410 and "Location" not in response.headers
    assert "This link has expired" in response.text
    assert client.get(f"/recs/c/{fresh}").status_code == 302
    assert len(rows(email_app, EmailClick)) == 1


def test_a_token_signed_by_another_shop_is_refused(email_app: Flask) -> None:
    token = ClickTokens(b"another secret").make("k" * 40, "tea-0", "weekly", 0)
    assert email_app.test_client().get(f"/recs/c/{token}").status_code == 400


HOSTILE_URLS = ["//evil.example", "https:evil.example", "/\\evil.example", "javascript:alert(1)",
                "https://evil.example/p", "https://shop.example.evil.example/p", "https://shop.example@evil.example/",
                " //evil.example", "\t/\\evil.example", "/\t/evil.example", "data:text/html,hi", "evil.example"]


def test_redirects_never_leave_the_shop(email_app: Flask) -> None:
    recs = recs_of(email_app)
    recs.catalog.upsert([{"id": f"bad-{i}", "title": "Bad", "url": url, "category": "bad"}
                         for i, url in enumerate(HOSTILE_URLS)]
                        + [{"id": "abs-1", "title": "Abs", "url": f"{PUBLIC}/p/abs-1", "category": "bad"}])
    state = email_app.extensions["storefront_recs"]
    tokens = ClickTokens(state.secret)
    client = email_app.test_client()
    locations = {}
    for i in range(len(HOSTILE_URLS)):
        token = tokens.make(state.user_key("u1"), f"bad-{i}", "weekly", 0)
        # The query string cannot choose the target either (only utm_* is forwarded).
        response = client.get(f"/recs/c/{token}", query_string={
            "next": "https://evil.example", "url": "//evil.example", "redirect": "javascript:alert(1)",
            "utm_source": "//evil.example"})
        assert response.status_code == 302
        locations[HOSTILE_URLS[i]] = response.headers["Location"]
    for url, location in locations.items():
        assert location.startswith(PUBLIC + "/?") or location.startswith("/p/"), (url, location)
        assert location.split("?")[0] in (PUBLIC + "/",) or not location.startswith("//"), (url, location)
        assert "evil.example" not in location.split("?")[0], (url, location)
    token = tokens.make(state.user_key("u1"), "abs-1", "weekly", 0)
    assert client.get(f"/recs/c/{token}").headers["Location"] == f"{PUBLIC}/p/abs-1"
    assert client.get(f"/recs/c/{token}/..//evil.example").status_code == 404


def test_without_consent_the_click_still_redirects_but_nothing_is_stored(email_app: Flask) -> None:
    block = recs_of(email_app).email_block("u1", n=1, campaign="weekly")
    client = email_app.test_client()
    response = client.get(path_of(block.items[0].click_url), headers={"DNT": "1"})
    assert response.status_code == 302 and "Set-Cookie" not in response.headers
    assert client.head(path_of(block.items[0].click_url)).status_code == 302  # link scanners
    assert not [e for e in rows(email_app, Event) if e.type == "click"] and not rows(email_app, EmailClick)


def test_an_item_out_of_stock_since_sending_redirects_to_its_best_similar_item(shop: Flask) -> None:
    recs = recs_of(shop)
    block = recs.email_block("u3", n=4, campaign="weekly")  # u3 loves garden
    item = next(i for i in block.items if i.item_id.startswith("garden-"))
    recs.catalog.upsert([{"id": item.item_id, "in_stock": False}])
    expected = next(r for r in recs.similar_items(item.item_id, n=1))
    response = shop.test_client().get(path_of(item.click_url))
    assert response.headers["Location"] == expected.url and expected.item_id != item.item_id
    assert expected.item_id.startswith("garden-")
    [click] = rows(shop, EmailClick)
    assert (click.item_id, click.target_item_id) == (item.item_id, expected.item_id)
    shop.config["RECS_EMAIL_SUBSTITUTE_OUT_OF_STOCK"] = False
    assert shop.test_client().get(path_of(item.click_url)).headers["Location"] == f"/p/{item.item_id}"


# -- attribution and privacy ----------------------------------------------------------------------
def shift_clicks(app: Flask, to: Any, user_id: str | None = None) -> None:
    """Move clicks back in time (events cannot be tracked in the future)."""
    state = app.extensions["storefront_recs"]
    stmt = update(EmailClick).values(clicked_at=to)
    if user_id is not None:
        stmt = stmt.where(EmailClick.user_key == state.user_key(user_id))
    with state.engine.begin() as conn:
        conn.execute(stmt)


def test_a_purchase_after_a_click_is_attributed_to_the_campaign(email_app: Flask) -> None:
    recs = recs_of(email_app)
    client = email_app.test_client()
    now = utcnow()
    for user, campaign in (("ann", "weekly"), ("bob", "weekly"), ("cat", "monthly")):
        if user != "bob":  # bought before the click: not the campaign's doing
            recs.track("purchase", user_id=user, item_id="tea-3", value=99.0, ts=now - timedelta(days=3))
        block = recs.email_block(user, n=2, campaign=campaign)
        assert client.get(path_of(block.items[0].click_url)).status_code == 302
    shift_clicks(email_app, now - timedelta(days=2))
    shift_clicks(email_app, now - timedelta(days=9), "bob")  # outside the 7-day window
    recs.track("purchase", user_id="ann", items=[{"item_id": "tea-1", "price": 10.0, "quantity": 2},
                                                 {"item_id": "tea-2", "price": 5.5}])
    recs.track("purchase", user_id="cat", item_id="books-1", value=7.25)
    recs.track("purchase", user_id="bob", item_id="books-2", value=50.0)
    recs.track("purchase", user_id="dan", item_id="books-3", value=30.0)  # never clicked
    report = {row["campaign"]: row for row in recs.email_attribution()}
    assert report["weekly"] == {"campaign": "weekly", "clicks": 2, "clickers": 2, "purchases": 1, "items": 2,
                                "revenue": 25.5}
    assert report["monthly"] == {"campaign": "monthly", "clicks": 1, "clickers": 1, "purchases": 1, "items": 1,
                                 "revenue": 7.25}
    # A longer window takes in bob's purchase; filters by campaign and by time of click.
    assert recs.email_attribution(campaign="weekly", window_days=10)[0]["revenue"] == 75.5
    assert [r["campaign"] for r in recs.email_attribution(since=now - timedelta(days=3))] == ["monthly", "weekly"]
    assert recs.email_attribution(since=now - timedelta(days=1)) == []


def test_the_latest_click_wins_and_a_guest_purchase_in_the_clicking_browser_counts(email_app: Flask) -> None:
    recs = recs_of(email_app)
    client = email_app.test_client()
    client.get(path_of(recs.email_block("eve", n=1, campaign="weekly").items[0].click_url))
    shift_clicks(email_app, utcnow() - timedelta(hours=2))
    client.get(path_of(recs.email_block("eve", n=1, campaign="flash-sale").items[0].click_url))
    with email_app.app_context():
        anonymous_id = read_anonymous_cookie(client.get_cookie("recs_aid").value)[0]  # type: ignore[union-attr]
    assert anonymous_id
    recs.track("purchase", anonymous_id=anonymous_id, item_id="coffee-1", value=12.0)
    report = {row["campaign"]: row for row in recs.email_attribution()}
    assert report["flash-sale"]["revenue"] == 12.0 and report["weekly"]["purchases"] == 0


def test_erasure_and_export_cover_email_sends_and_clicks(email_app: Flask) -> None:
    recs = recs_of(email_app)
    block = recs.email_block("zoe", n=2, campaign="weekly")
    email_app.test_client().get(path_of(block.items[0].click_url))
    recs.email_block("other", n=2, campaign="weekly")
    exported = recs.export_user("zoe")
    assert len(exported["data"]["email_sends"]) == 2 and len(exported["data"]["email_clicks"]) == 1
    assert exported["data"]["email_clicks"][0]["campaign"] == "weekly"
    deleted = recs.forget_user("zoe")["deleted"]
    assert deleted["email_sends"] == 2 and deleted["email_clicks"] == 1
    with email_app.extensions["storefront_recs"].engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(EmailSend)).scalar() == 2  # the other person's
        assert conn.execute(select(func.count()).select_from(EmailClick)).scalar() == 0
