"""Data minimisation and opt-out on the server: what reaches the database, and what never does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import make_app, new_event_id
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from test_privacy_helpers import all_rows, database_text

from storefront_recs import Recs
from storefront_recs.models import Event, metadata
from storefront_recs.privacy.sanitize import mask_personal, sanitize_page, sanitize_referrer

URL = "/recs/api/v1/events"
EMAIL = "jane.doe+shop@example.com"
EMAIL_PATTERN = re.compile(r"[\w.+-]+(@|%40)[\w-]+\.[\w.]+")
IPV4_PATTERN = re.compile(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b")
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0"


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        (f"https://shop.example/p/sku-1?email={EMAIL}&reset=tok123#top", "/p/sku-1"),
        ("/search?q=shoes", "/search"),
        ("/account/jane.doe%40example.com/orders", "/account/[email]/orders"),
        ("", ""),
    ],
)
def test_page_keeps_the_path_only(url: str, stored: str) -> None:
    assert sanitize_page(url) == stored


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        (f"https://www.Google.com/search?q={EMAIL}", "https://www.google.com"),
        ("https://user:secret@mail.example.net:8443/inbox/42", "https://mail.example.net:8443"),
        ("http://203.0.113.9/admin", None),
        ("http://[2001:db8::1]/x", None),
        ("android-app://com.example.app/", None),
        ("not a url", None),
    ],
)
def test_referrer_keeps_the_origin_only(url: str, stored: str | None) -> None:
    assert sanitize_referrer(url) == stored


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (f"gift for {EMAIL}", "gift for [email]"),
        ("jane%40example.com", "[email]"),
        ("from 203.0.113.7:8080 and 2001:db8::7", "from [ip]:8080 and [ip]"),
        ("iphone 15 pro 256gb", "iphone 15 pro 256gb"),
        ("size 10.5 at 12:30:45", "size 10.5 at 12:30:45"),
    ],
)
def test_emails_and_ip_addresses_are_masked_in_text(text: str, masked: str) -> None:
    assert mask_personal(text) == masked


def stored_contexts(app: Flask) -> list[dict | None]:
    with app.extensions["storefront_recs"].engine.connect() as conn:
        return list(conn.scalars(select(Event.context).order_by(Event.id)))


def test_context_is_sanitised_on_ingest_over_http_and_track(client: FlaskClient, app: Flask, recs: Recs) -> None:
    context = {
        "page": f"https://shop.example/search?q=x&email={EMAIL}",
        "referrer": f"https://mail.example.net/inbox?to={EMAIL}",
        "query": f"{EMAIL} birthday",
        "widget": "similar",
    }
    response = client.post(URL, json={"event_id": new_event_id(), "type": "search", "context": context})
    assert response.json["accepted"] == 1
    recs.track("view", user_id="u1", item_id="sku-1", context={"page": f"/p/sku-1?email={EMAIL}"})
    assert stored_contexts(app) == [
        {"page": "/search", "referrer": "https://mail.example.net", "query": "[email] birthday", "widget": "similar"},
        {"page": "/p/sku-1"},
    ]


def test_a_browsing_session_leaves_no_ip_email_or_user_agent_in_the_database(app: Flask, recs: Recs) -> None:
    browser = app.test_client()
    browser.environ_base.update({"REMOTE_ADDR": "198.51.100.23", "HTTP_USER_AGENT": USER_AGENT})
    headers = {"X-Forwarded-For": "203.0.113.7, 198.51.100.1", "X-Real-IP": "203.0.113.7"}

    def send(event: dict) -> None:
        response = browser.post(URL, json={"event_id": new_event_id(), **event}, headers=headers)
        assert response.status_code == 200 and not response.json["rejected"], response.json

    send({"type": "page_view", "context": {"page": f"https://shop.example/?utm_source=mail&email={EMAIL}",
                                           "referrer": "http://203.0.113.9/webmail?u=jane"}})
    send({"type": "search", "context": {"query": f"{EMAIL} 203.0.113.7", "page": "/search?q=x"}})
    send({"type": "view", "item_id": "sku-1", "context": {"page": f"/p/sku-1?ref={EMAIL}#reviews"}})
    browser.post(f"/login/{EMAIL}")  # the shop's user id is an email address
    send({"type": "add_to_cart", "item_id": "sku-1", "quantity": 2})
    send({"type": "purchase", "items": [{"item_id": "sku-1", "quantity": 2, "price": 9.5}],
          "context": {"page": f"/checkout/done?order=1&mail={EMAIL}"}})
    recs.track("purchase", user_id=EMAIL, item_id="sku-1", event_id="order-7001",
               context={"page": f"/thanks?email={EMAIL}", "campaign": f"winback-{EMAIL}"})

    text = database_text(app)
    assert "sku-1" in text and len(all_rows(app)["recs_events"]) == 6
    assert EMAIL_PATTERN.search(text) is None, text
    assert IPV4_PATTERN.search(text) is None, text
    assert "Mozilla" not in text and "Firefox" not in text
    assert "jane" not in text


@pytest.mark.parametrize("header", [{"Sec-GPC": "1"}, {"DNT": "1"}])
def test_gpc_and_dnt_requests_store_nothing_at_all(client: FlaskClient, app: Flask, header: dict) -> None:
    client.post("/login/u1")
    response = client.post(URL, json={"event_id": new_event_id(), "type": "view", "item_id": "sku-1"}, headers=header)
    assert response.status_code == 200 and response.json["accepted"] == 0
    assert "Set-Cookie" not in response.headers
    assert all(rows == [] for rows in all_rows(app).values())


def test_opt_out_headers_are_ignored_only_when_the_shop_turns_them_off(database_uri: str, tmp_path: Path) -> None:
    app = make_app(database_uri, tmp_path, RECS_RESPECT_DNT=False)
    response = app.test_client().post(
        URL, json={"event_id": new_event_id(), "type": "view", "item_id": "sku-1"}, headers={"Sec-GPC": "1"}
    )
    assert response.json["accepted"] == 1
    app.extensions["storefront_recs"].engine.dispose()


def test_consent_mode_stores_nothing_without_the_consent_cookie(database_uri: str, tmp_path: Path) -> None:
    app = make_app(database_uri, tmp_path, RECS_REQUIRE_CONSENT=True)
    client = app.test_client()
    event = {"event_id": new_event_id(), "type": "view", "item_id": "sku-1"}
    assert client.post(URL, json=event).json["accepted"] == 0
    assert all(rows == [] for rows in all_rows(app).values())
    client.set_cookie("recs_consent", "1")
    assert client.post(URL, json=event).json["accepted"] == 1
    app.extensions["storefront_recs"].engine.dispose()


DOCUMENTED_TABLES = ("recs_items", "recs_events", "recs_identities", "recs_model_runs", "recs_leases",
                     "recs_erasures", "recs_suppressions", "recs_email_sends", "recs_email_clicks",
                     "recs_experiment_assignments", "recs_refused_requests")


def test_docs_list_every_stored_field() -> None:
    doc = (Path(__file__).resolve().parent.parent / "docs" / "privacy.md").read_text()
    missing = [
        f"{name}.{column.name}"
        for name in DOCUMENTED_TABLES
        for column in metadata.tables[name].columns
        if f"`{name}.{column.name}`" not in doc and f"`{column.name}`" not in section(doc, name)
    ]
    assert missing == []


def section(doc: str, table: str) -> str:
    """The part of the document under the heading that names ``table``."""
    match = re.search(rf"^#+ [^\n]*`{table}`[^\n]*\n(.*?)(?=^#+ |\Z)", doc, re.M | re.S)
    return match.group(1) if match else ""
