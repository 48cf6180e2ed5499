"""recs.track(): server-side events with the same validation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import Flask
from sqlalchemy import select

from storefront_recs import Recs, ValidationError
from storefront_recs.models import Event


def test_track_stores_a_purchase_with_the_shops_timestamp(app: Flask, recs: Recs) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert recs.track("purchase", user_id="u1", item_id="sku-1", quantity=2, value=19.9, ts=when, event_id="order-1001")
    with app.extensions["storefront_recs"].engine.connect() as conn:
        row = conn.execute(select(Event)).one()
    assert (row.type, row.item_id, row.quantity, row.value, row.source) == ("purchase", "sku-1", 2, 19.9, "server")
    assert row.ts == datetime(2026, 1, 2, 3, 4, 5)
    with app.app_context():
        assert row.user_key == app.extensions["storefront_recs"].user_key("u1")


def test_track_is_idempotent_with_a_stable_event_id(recs: Recs) -> None:
    assert recs.track("purchase", user_id="u1", item_id="sku-1", event_id="order-2002") is True
    assert recs.track("purchase", user_id="u1", item_id="sku-1", event_id="order-2002") is False


def test_track_works_outside_an_app_context_when_created_with_the_app(recs: Recs) -> None:
    # The fixture's app was passed to Recs(app); no app context is pushed here.
    assert recs.track("view", user_id="u9", item_id="sku-1")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"user_id": "u1"}, "item_id"),
        ({"user_id": "u1", "item_id": "x", "quantity": 0}, "quantity"),
        ({"item_id": "x"}, "user_id"),
    ],
)
def test_invalid_server_events_raise_a_clear_error_and_store_nothing(app: Flask, recs: Recs, kwargs, message) -> None:
    with pytest.raises(ValidationError, match=message):
        recs.track("add_to_cart", **kwargs)
    with app.extensions["storefront_recs"].engine.connect() as conn:
        assert conn.execute(select(Event)).first() is None


def test_unknown_type_is_rejected(recs: Recs) -> None:
    with pytest.raises(ValidationError, match="type"):
        recs.track("refund-ish", user_id="u1", item_id="x")
