"""Identity is decided on the server: user_loader, else our anonymous-id cookie."""

from __future__ import annotations

from conftest import new_event_id
from flask import Flask
from sqlalchemy import select

from storefront_recs import Recs
from storefront_recs.models import Event, Identity

URL = "/recs/api/v1/events"


def rows(app: Flask) -> list[tuple]:
    with app.extensions["storefront_recs"].engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(Event.item_id, Event.user_key, Event.anonymous_id).order_by(Event.id))]


def view(item: str, **extra: object) -> dict:
    return {"event_id": new_event_id(), "type": "view", "item_id": item, **extra}


def test_first_tracking_request_issues_a_first_party_anonymous_cookie(client, app) -> None:
    response = client.post(URL, json=view("a"))
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("recs_aid=")
    for attribute in ("HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=34128000"):
        assert attribute in cookie
    # Later requests reuse the cookie and do not issue another one.
    assert "Set-Cookie" not in client.post(URL, json=view("b")).headers
    anonymous_ids = {r[2] for r in rows(app)}
    assert len(anonymous_ids) == 1 and None not in anonymous_ids


def test_spoofed_user_id_in_the_body_is_ignored(client, app, recs: Recs) -> None:
    client.post(URL, json=view("a", user_id="victim", user_key="victim", anonymous_id="attacker-chosen-id-123"))
    [(item, user_key, anonymous_id)] = rows(app)
    assert user_key is None
    assert anonymous_id != "attacker-chosen-id-123"
    with app.app_context():
        victim_key = app.extensions["storefront_recs"].user_key("victim")
    assert victim_key not in {user_key, anonymous_id}


def test_malformed_cookie_is_replaced_not_trusted(client, app) -> None:
    client.set_cookie("recs_aid", "x")  # too short to be one of ours
    response = client.post(URL, json=view("a"))
    assert "recs_aid=" in response.headers["Set-Cookie"]
    assert rows(app)[0][2] != "x"


def test_logged_in_user_comes_from_the_user_loader_and_is_stored_hashed(client, app) -> None:
    client.post("/login/alice@example.com")
    client.post(URL, json=view("a"))
    [(_, user_key, _)] = rows(app)
    with app.app_context():
        assert user_key == app.extensions["storefront_recs"].user_key("alice@example.com")
    assert "alice" not in user_key


def test_anonymous_history_is_linked_when_the_visitor_logs_in(client, app) -> None:
    client.post(URL, json={"events": [view("a"), view("b")]})
    [anonymous_id] = {r[2] for r in rows(app)}
    client.post("/login/u1")
    client.post(URL, json=view("c"))
    with app.app_context():
        user_key = app.extensions["storefront_recs"].user_key("u1")
    assert rows(app) == [("a", user_key, anonymous_id), ("b", user_key, anonymous_id), ("c", user_key, anonymous_id)]
    with app.extensions["storefront_recs"].engine.connect() as conn:
        links = conn.execute(select(Identity.anonymous_id, Identity.user_key)).all()
    assert [tuple(link) for link in links] == [(anonymous_id, user_key)]

    # After logout, new events are anonymous again and are not credited to the user.
    client.post("/logout")
    client.post(URL, json=view("d"))
    assert rows(app)[-1] == ("d", None, anonymous_id)


def test_another_visitors_anonymous_history_is_not_linked(app) -> None:
    first, second = app.test_client(), app.test_client()
    first.post(URL, json=view("a"))
    second.post("/login/u2")
    second.post(URL, json=view("b"))
    by_item = {item: (user_key, anon) for item, user_key, anon in rows(app)}
    assert by_item["a"][0] is None
    assert by_item["b"][0] is not None


def test_dnt_and_gpc_store_nothing_and_issue_no_cookie(client, app) -> None:
    for header in ({"DNT": "1"}, {"Sec-GPC": "1"}):
        response = client.post(URL, json=view("a"), headers=header)
        assert response.status_code == 200
        assert response.json["accepted"] == 0 and response.json["ignored"] == 1
        assert "Set-Cookie" not in response.headers
    assert rows(app) == []


def test_consent_mode_stores_nothing_until_the_consent_cookie_is_set(app) -> None:
    app.config["RECS_REQUIRE_CONSENT"] = True
    client = app.test_client()
    refused = client.post(URL, json=view("a"))
    assert refused.json["reason"] == "consent" and "Set-Cookie" not in refused.headers
    client.set_cookie("recs_consent", "1")
    assert client.post(URL, json=view("b")).json["accepted"] == 1
    assert [r[0] for r in rows(app)] == ["b"]
