"""Cached answers: served again only while nothing they are computed from has changed."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
import test_serving
from conftest import make_app
from flask import Flask
from test_serving import SHOP_CONFIG, get, view

from storefront_recs import Recs
from storefront_recs.db import utcnow
from storefront_recs.serving import popularity
from storefront_recs.serving.answer_keys import frozen, history_key
from storefront_recs.serving.rules import Filters
from storefront_recs.serving.visitor_events import VisitorHistory
from storefront_recs.tracking.identity import Visitor

# The trained shop of the serving tests (built once per module), a private copy per test.
trained_shop_files = test_serving.trained_shop_files
shop = test_serving.shop


def another_worker(shop: Flask) -> Flask:
    """A second app on the same database and model folder, as a second gunicorn worker is."""
    return make_app(shop.config["RECS_DATABASE_URI"], Path(shop.config["RECS_MODEL_DIR"]).parent, **SHOP_CONFIG)


def cached_answers(app: Flask, kind: str) -> int:
    rec = app.extensions["storefront_recs"].recommender
    return len(rec._for_you_answers if kind == "for-you" else rec._similar_answers)


def ids(answer: dict) -> list[str]:
    return [item["id"] for item in answer["items"]]


def test_a_cached_for_you_answer_changes_after_a_new_event_posted_to_any_worker(shop: Flask) -> None:
    client = shop.test_client()
    view(client, "garden-3")
    first = get(client, "for-you", n=6)
    assert get(client, "for-you", n=6) == first
    assert cached_answers(shop, "for-you") == 1  # the repeat was served from the cache
    # The same visitor (same cookie) on the other worker views a book.
    other = another_worker(shop).test_client()
    other.set_cookie("recs_aid", client.get_cookie("recs_aid").value)  # type: ignore[union-attr]
    for item in ("books-2", "books-3", "books-4"):
        view(other, item)
    after = get(client, "for-you", n=6)
    assert ids(after) != ids(first)
    assert any("Books thing 4" in item["reason"] for item in after["items"]), after


def test_a_cached_answer_changes_when_an_item_in_it_goes_out_of_stock(shop: Flask) -> None:
    recs: Recs = shop.extensions["storefront_recs"].recs
    client = shop.test_client()
    view(client, "tea-2")
    for_you, similar = get(client, "for-you", n=6), get(client, "similar/tea-2", n=6)
    assert get(client, "for-you", n=6) == for_you and get(client, "similar/tea-2", n=6) == similar
    assert cached_answers(shop, "for-you") == 1 and cached_answers(shop, "similar") == 1
    gone = [ids(for_you)[0], ids(similar)[0]]
    recs.catalog.set_in_stock(gone, False)
    for path in ("for-you", "similar/tea-2"):
        answer = ids(get(client, path, n=6))
        assert len(answer) == 6 and not set(answer) & set(gone), (path, answer, gone)


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The serving clock (``time.monotonic``) moved on by ``seconds``."""
    clock = time.monotonic
    monkeypatch.setattr(popularity.time, "monotonic", lambda: clock() + seconds)


def test_cached_answers_outlive_the_minute_of_the_category_lists(shop: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a model, the category lists change only with the model or the catalogue, so the
    minute they are remade in is no reason to compute every cached answer again."""
    client = shop.test_client()
    view(client, "garden-3")
    for_you, similar = get(client, "for-you", n=6), get(client, "similar/tea-2", n=6)
    later(monkeypatch, 3 * popularity.CATEGORY_REFRESH_SECONDS)
    assert get(client, "for-you", n=6) == for_you and get(client, "similar/tea-2", n=6) == similar
    assert cached_answers(shop, "for-you") == 1 and cached_answers(shop, "similar") == 1


def test_category_lists_behind_the_catalogue_are_remade_when_due(shop: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lists made before a catalogue change serve for at most a minute, and answers cached with
    them no longer: the key says they lag until they are made again."""
    state = shop.extensions["storefront_recs"]
    rec = state.recommender
    with shop.app_context():
        bundle = rec.bundle()
        assert bundle is not None
        rec.catalog.refresh()
        assert "tea-1" in rec.popularity.ranked_in_category(bundle, rec.catalog, "tea")
        current = rec.popularity.state(bundle, rec.catalog, {})
        state.recs.catalog.upsert([{"id": "tea-1", "title": "Tea thing 1", "category": "books"}])
        rec.catalog.refresh()
        lagging = rec.popularity.state(bundle, rec.catalog, {})
        assert lagging != current
        assert "tea-1" not in rec.popularity.ranked_in_category(bundle, rec.catalog, "books")  # made a moment ago
        later(monkeypatch, popularity.CATEGORY_REFRESH_SECONDS + 1)
        assert rec.popularity.state(bundle, rec.catalog, {}) != lagging
        assert "tea-1" in rec.popularity.ranked_in_category(bundle, rec.catalog, "books")
        assert "tea-1" not in rec.popularity.ranked_in_category(bundle, rec.catalog, "tea")
        assert rec.popularity.state(bundle, rec.catalog, {}) == current  # up to date: nothing lags


def test_cached_answers_change_with_a_new_model(shop: Flask) -> None:
    recs: Recs = shop.extensions["storefront_recs"].recs
    client = shop.test_client()
    view(client, "coffee-2")
    before = get(client, "for-you", n=5), get(client, "similar/coffee-2", n=5)
    assert (get(client, "for-you", n=5), get(client, "similar/coffee-2", n=5)) == before
    shop.config["RECS_QUALITY_GATE_MARGIN"] = -1  # publish whatever the metrics
    report = recs.train()
    assert report.published and report.version != before[0]["model_version"]
    deadline = time.monotonic() + 10  # workers look for a new bundle once a second
    while get(client, "trending", n=1)["model_version"] != report.version and time.monotonic() < deadline:
        time.sleep(0.2)
    for answer in (get(client, "for-you", n=5), get(client, "similar/coffee-2", n=5)):
        assert answer["model_version"] == report.version


def test_cached_answers_equal_ones_computed_afresh(shop: Flask) -> None:
    """Every request parameter is part of the key: a worker answering from its cache gives what a
    worker with empty caches computes."""
    recs: Recs = shop.extensions["storefront_recs"].recs
    other = another_worker(shop).extensions["storefront_recs"]
    fresh: Recs = other.recs
    rec = other.recommender
    recs.track("add_to_cart", user_id="u5", item_id="coffee-7")
    asks = [dict(n=n, **filters) for n in (4, 9) for filters in
            ({}, {"category": "tea"}, {"min_price": 8, "max_price": 12}, {"exclude": "tea-1,coffee-2"})]
    contexts = [None, {"category": "books"}, {"segment": {"tier": 1}}, {"segment": {"tier": "1"}}]

    def afresh() -> Recs:
        rec._for_you_answers.clear()
        rec._similar_answers.clear()
        return fresh

    for user in ("u1", "u5", "u8", "someone-new"):
        for ask in asks:
            for context in contexts:
                cached = [recs.for_you(user_id=user, context=context, **ask) for _ in range(2)][1]
                assert cached == afresh().for_you(user_id=user, context=context, **ask), (user, ask, context)
    for item in ("tea-1", "garden-14", "books-quiet", "no-such-item"):
        for ask in asks:
            cached = [recs.similar_items(item, **ask) for _ in range(2)][1]
            assert cached == afresh().similar_items(item, **ask), (item, ask)


def test_changing_a_returned_answer_leaves_the_cached_one_alone(shop: Flask) -> None:
    recs: Recs = shop.extensions["storefront_recs"].recs
    for _ in range(3):  # computed, then served from the cache, twice
        picks = recs.for_you(user_id="u3", n=5)
        assert len(picks) == 5
        picks.clear()
        similar = recs.similar_items("tea-1", n=5)
        assert len(similar) == 5
        similar.clear()


def test_the_json_of_a_cached_answer_is_that_of_each_copy_as_changed(shop: Flask) -> None:
    recs: Recs = shop.extensions["storefront_recs"].recs
    visitor = Visitor(user_key=None, anonymous_id="json-copies-visitor-1")
    recs.track("view", anonymous_id=visitor.anonymous_id, item_id="tea-2")
    with shop.app_context():
        for change in ("none", "variant", "items", "source", "none"):
            answer = recs.for_you_answer(visitor, n=5)
            assert json.loads(answer.to_json()) == answer.to_dict()  # made, or taken from the cached one
            if change == "variant":
                answer.variant = "exp:b"
            elif change == "items":
                answer.items.pop(0)
            elif change == "source":
                answer.source = "fallback"
            assert json.loads(answer.to_json()) == answer.to_dict(), change
    assert cached_answers(shop, "for-you") == 1


def test_history_key_changes_with_any_event_and_when_one_leaves_the_session() -> None:
    now = utcnow()
    events = [("tea-1", "view", now - timedelta(minutes=5)), ("tea-2", "view", now - timedelta(minutes=40))]
    key = history_key(VisitorHistory(events=list(events)), now - timedelta(minutes=30))
    assert history_key(VisitorHistory(events=list(events)), now - timedelta(minutes=30)) == key
    # The older view leaves the session window; then the newer one does too.
    assert history_key(VisitorHistory(events=list(events)), now - timedelta(minutes=50)) != key
    assert history_key(VisitorHistory(events=list(events)), now - timedelta(minutes=1)) != key
    # Another event anywhere, or another type of event, changes it.
    assert history_key(VisitorHistory(events=[*events, ("tea-3", "view", now - timedelta(hours=2))]),
                       now - timedelta(minutes=30)) != key
    changed = [events[0], ("tea-2", "add_to_cart", events[1][2])]
    assert history_key(VisitorHistory(events=changed), now - timedelta(minutes=30)) != key


def test_frozen_contexts_keep_types_apart() -> None:
    assert frozen({"segment": {"tier": 1}}) == frozen({"segment": {"tier": 1}})
    assert frozen({"segment": {"tier": 1}}) != frozen({"segment": {"tier": "1"}})
    assert frozen({"segment": {"tier": 1}}) != frozen({"segment": {"tier": True}})
    assert frozen({"a": [1, 2]}) != frozen({"a": [2, 1]})
    with pytest.raises(TypeError):
        frozen({"a": bytearray(b"x")})


def test_the_visitors_history_is_read_newest_first_on_every_backend(app: Flask) -> None:
    """The raw events read (compiled once per dialect) against SQLAlchemy's own rows."""
    recs: Recs = app.extensions["storefront_recs"].recs
    recs.catalog.upsert([{"id": f"i{k}", "title": f"Item {k}"} for k in range(5)])
    start = utcnow() - timedelta(hours=1)
    for k in range(5):
        recs.track("view", user_id="reader", item_id=f"i{k}", ts=start + timedelta(minutes=k))
    recs.track("view", anonymous_id="cookie-of-someone-else-0001", item_id="i0")
    assert [r.item_id for r in recs.recently_viewed(user_id="reader", n=3)] == ["i4", "i3", "i2"]
    assert [r.item_id for r in recs.recently_viewed(anonymous_id="cookie-of-someone-else-0001")] == ["i0"]
    assert recs.recently_viewed(user_id="nobody") == []


def test_an_experiment_variants_overrides_are_part_of_the_key(shop: Flask) -> None:
    """Visitors in different variants ask one worker for the same item: each gets their variant's."""
    rec = shop.extensions["storefront_recs"].recommender
    visitor = Visitor(user_key=None, anonymous_id="a-visitor-in-a-variant-01")
    pinned = {"RECS_PINNED": {"similar": ["books-9"], "for-you": ["books-9"]}}
    for _ in range(2):
        assert rec.similar("tea-1", 5, Filters()).items[0].item_id != "books-9"
        assert rec.similar("tea-1", 5, Filters(), pinned).items[0].reason == "featured"
        assert rec.for_you(visitor, 5, Filters()).items[0].item_id != "books-9"
        assert rec.for_you(visitor, 5, Filters(), None, pinned).items[0].reason == "featured"
