"""The anonymous-id cookie is signed: a value the server did not sign starts a new anonymous id;
keys rotate through SECRET_KEY_FALLBACKS / RECS_SECRET_KEY_FALLBACKS."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_app, new_event_id
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import Signer
from sqlalchemy import select

from storefront_recs.models import Event
from storefront_recs.tracking.identity import (
    COOKIE_SALT,
    anonymous_cookie_value,
    read_anonymous_cookie,
)

URL = "/recs/api/v1/events"
CHOSEN = "attacker-chosen-id-12345"


def post_view(client: FlaskClient) -> None:
    response = client.post(URL, json={"event_id": new_event_id(), "type": "view", "item_id": "sku-1"})
    assert response.json["accepted"] == 1


def stored_ids(app: Flask) -> list[str | None]:
    with app.extensions["storefront_recs"].engine.connect() as conn:
        return list(conn.execute(select(Event.anonymous_id).order_by(Event.id)).scalars())


def cookie_value(client: FlaskClient) -> str:
    found = client.get_cookie("recs_aid")
    assert found is not None
    return found.value


@pytest.mark.parametrize("value", [
    CHOSEN,  # unsigned, though shaped like one of ours
    CHOSEN + ".forgedsignature",
    CHOSEN + "." + Signer(b"some-other-key", salt=COOKIE_SALT).get_signature(CHOSEN).decode(),
    CHOSEN + "." + Signer(b"dev-only-secret", salt="another-purpose").get_signature(CHOSEN).decode(),
])
def test_an_unsigned_or_forged_cookie_starts_a_new_anonymous_id(app: Flask, value: str) -> None:
    client = app.test_client()
    client.set_cookie("recs_aid", value)
    post_view(client)
    [stored] = stored_ids(app)
    assert stored is not None and stored != CHOSEN
    with app.app_context():
        assert read_anonymous_cookie(cookie_value(client)) == (stored, True)
    post_view(client)  # the new, signed cookie is kept
    assert stored_ids(app) == [stored, stored]


def test_the_issued_cookie_is_the_id_signed_and_is_read_back(sqlite_app: Flask) -> None:
    client = sqlite_app.test_client()
    post_view(client)
    value = cookie_value(client)
    [stored] = stored_ids(sqlite_app)
    assert value != stored and value.startswith(stored + ".")
    with sqlite_app.app_context():
        assert anonymous_cookie_value(stored) == value
    assert "Set-Cookie" not in client.post(URL, json={"event_id": new_event_id(), "type": "page_view"}).headers


def visit_then_rotate(tmp_path: Path, old: dict, new: dict) -> tuple[Flask, FlaskClient, str]:
    uri = f"sqlite:///{tmp_path / 'recs.sqlite3'}"
    before = make_app(uri, tmp_path, **old)
    first = before.test_client()
    post_view(first)
    [anonymous_id] = stored_ids(before)
    after = make_app(uri, tmp_path, **new)
    client = after.test_client()
    client.set_cookie("recs_aid", cookie_value(first))
    return after, client, anonymous_id


def test_flask_secret_key_fallbacks_rotate_the_key_and_the_cookie_is_signed_again(tmp_path: Path) -> None:
    app, client, anonymous_id = visit_then_rotate(
        tmp_path, {"SECRET_KEY": "old-key"}, {"SECRET_KEY": "new-key", "SECRET_KEY_FALLBACKS": ["old-key"]})
    response = client.post(URL, json={"event_id": new_event_id(), "type": "view", "item_id": "sku-2"})
    assert response.json["accepted"] == 1
    assert stored_ids(app) == [anonymous_id, anonymous_id]  # the same visitor
    assert "recs_aid=" in response.headers["Set-Cookie"]  # signed again, with the new key
    assert Signer(b"new-key", salt=COOKIE_SALT).validate(cookie_value(client))


def test_recs_secret_key_fallbacks_rotate_the_recs_secret(tmp_path: Path) -> None:
    app, client, anonymous_id = visit_then_rotate(
        tmp_path, {"RECS_SECRET_KEY": "recs-old"},
        {"RECS_SECRET_KEY": "recs-new", "RECS_SECRET_KEY_FALLBACKS": ["recs-old"]})
    post_view(client)
    assert stored_ids(app) == [anonymous_id, anonymous_id]


def test_a_key_no_longer_listed_starts_a_new_id(tmp_path: Path) -> None:
    app, client, anonymous_id = visit_then_rotate(tmp_path, {"SECRET_KEY": "old-key"}, {"SECRET_KEY": "new-key"})
    post_view(client)
    first, second = stored_ids(app)
    assert first == anonymous_id and second != anonymous_id


def test_withdrawing_consent_forgets_the_signed_id_and_not_a_forged_one(sqlite_app: Flask) -> None:
    client = sqlite_app.test_client()
    post_view(client)
    assert client.post("/recs/api/v1/consent", json={"consent": False}).status_code == 200
    assert stored_ids(sqlite_app) == []  # the visitor's history went with the cookie
    victim = sqlite_app.test_client()
    post_view(victim)
    [victim_id] = stored_ids(sqlite_app)
    attacker = sqlite_app.test_client()
    attacker.set_cookie("recs_aid", victim_id)  # the bare id, as someone who learnt it would send it
    assert attacker.post("/recs/api/v1/consent", json={"consent": False}).status_code == 200
    assert stored_ids(sqlite_app) == [victim_id]  # an unsigned value erases nobody
