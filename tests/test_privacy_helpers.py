"""Helpers shared by the privacy tests (no tests here): read every recs_* table in full."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conftest import new_event_id
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import MetaData, select

from storefront_recs import Recs
from storefront_recs import db as dbmod
from storefront_recs.tracking.identity import anonymous_cookie_value, read_anonymous_cookie


def all_rows(app: Flask) -> dict[str, list[dict[str, Any]]]:
    """Every row of every recs_* table actually in the database (reflected, not from models)."""
    engine = app.extensions["storefront_recs"].engine
    meta = MetaData()
    meta.reflect(engine, only=lambda name, _: name.startswith("recs_") and name != dbmod.VERSION_TABLE)
    with engine.connect() as conn:
        return {
            name: [dict(row._mapping) for row in conn.execute(select(table))]
            for name, table in meta.tables.items()
        }


def database_text(app: Flask) -> str:
    """The whole recs database as one string, to search for things that must not be stored."""
    return "\n".join(f"{name}: {row!r}" for name, rows in all_rows(app).items() for row in rows)


def rows_mentioning(app: Flask, needles: list[str]) -> list[str]:
    """``table: row`` for every row in which any needle appears in any column."""
    found = []
    for name, rows in all_rows(app).items():
        for row in rows:
            text = repr(row)
            if any(needle in text for needle in needles):
                found.append(f"{name}: {text}")
    return found


def key_of(app: Flask, user_id: str) -> str:
    return str(app.extensions["storefront_recs"].user_key(user_id))


URL = "/recs/api/v1/events"
SERVER_ANON = "server-side-anon-0001"


def post(client: FlaskClient, kind: str, item: str) -> dict[str, Any]:
    response = client.post(URL, json={"event_id": new_event_id(), "type": kind, "item_id": item})
    assert response.status_code == 200, response.json
    return response.json  # type: ignore[no-any-return]


def cookie(client: FlaskClient) -> str:
    """The anonymous id in the client's (signed) cookie."""
    found = client.get_cookie("recs_aid")
    assert found is not None
    with client.application.app_context():
        anonymous_id, _ = read_anonymous_cookie(found.value)
    assert anonymous_id is not None
    return anonymous_id


def set_anonymous_cookie(client: FlaskClient, anonymous_id: str) -> None:
    """Give the client the cookie the server would have issued for ``anonymous_id``."""
    with client.application.app_context():
        client.set_cookie("recs_aid", anonymous_cookie_value(anonymous_id))


@dataclass
class Shop:
    """Alice, Bob and a stranger after some browsing; Bob also used Alice's browser once."""

    alice_key: str
    bob_key: str
    alice_browser: str
    bob_browser: str
    stranger_browser: str


def seed(app: Flask, recs: Recs) -> Shop:
    alice = app.test_client()
    post(alice, "view", "sku-1")  # anonymous, linked at login below (stamped with her key)
    post(alice, "view", "sku-2")
    alice.post("/login/alice")
    post(alice, "add_to_cart", "sku-3")
    alice.post("/logout")
    post(alice, "view", "sku-4")  # her linked anonymous id, no user key: an anonymous event
    recs.track("purchase", user_id="alice", item_id="sku-3", event_id="order-1001")
    recs.track("view", user_id="alice", anonymous_id=SERVER_ANON, item_id="sku-5")
    recs.track("view", anonymous_id=SERVER_ANON, item_id="sku-6")  # seen on her events: hers
    alice.post("/login/bob")  # Bob on Alice's browser: his event carries her anonymous id
    post(alice, "view", "sku-7")
    alice.post("/logout")

    bob = app.test_client()
    post(bob, "view", "sku-1")
    bob.post("/login/bob")
    post(bob, "purchase", "sku-2")
    recs.track("purchase", user_id="bob", item_id="sku-9", event_id="order-1002")

    stranger = app.test_client()
    post(stranger, "view", "sku-1")
    return Shop(key_of(app, "alice"), key_of(app, "bob"), cookie(alice), cookie(bob), cookie(stranger))
