"""recs.catalog: partial upserts, stock, removal."""

from __future__ import annotations

import pytest

from storefront_recs import Recs, ValidationError


def test_upsert_inserts_then_updates_only_the_given_fields(recs: Recs) -> None:
    result = recs.catalog.upsert(
        [{"id": "sku-1", "title": "Mug", "price": 9.5, "category": "kitchen", "url": "/p/sku-1",
          "attributes": {"colour": "blue"}}]
    )
    assert (result.inserted, result.updated) == (1, 0)
    result = recs.catalog.upsert([{"id": "sku-1", "price": 7.0, "attributes": {"size": "L"}}])
    assert (result.inserted, result.updated) == (0, 1)
    item = recs.catalog.get("sku-1")
    assert item is not None
    assert (item["title"], item["price"], item["category"], item["url"]) == ("Mug", 7.0, "kitchen", "/p/sku-1")
    assert item["attributes"] == {"colour": "blue", "size": "L"}
    assert item["in_stock"] is True


def test_stock_and_removal(recs: Recs) -> None:
    recs.catalog.upsert([{"id": "a"}, {"id": "b"}, {"id": "c"}])
    assert recs.catalog.set_in_stock(["a"], False) == 1
    assert recs.catalog.remove(["b"]) == 1
    assert recs.catalog.count() == 3
    assert recs.catalog.count(available_only=True) == 1
    # Upserting a removed item brings it back.
    recs.catalog.upsert([{"id": "b", "title": "Back"}])
    assert recs.catalog.get("b")["active"] is True


def test_invalid_items_raise_and_write_nothing_in_strict_mode(recs: Recs) -> None:
    with pytest.raises(ValidationError) as info:
        recs.catalog.upsert([{"id": "ok"}, {"title": "no id"}, {"id": "neg", "price": -1}])
    assert set(info.value.errors) == {1, 2}
    assert recs.catalog.get("ok") is None


def test_non_strict_upsert_keeps_the_good_items(recs: Recs) -> None:
    result = recs.catalog.upsert([{"id": "ok"}, {"id": "neg", "price": -1}], strict=False)
    assert result.inserted == 1
    assert [r["index"] for r in result.rejected] == [1]
    assert recs.catalog.get("ok") is not None


def test_numeric_ids_are_accepted_as_text(recs: Recs) -> None:
    recs.catalog.upsert([{"id": 42, "title": "Answer"}])
    assert recs.catalog.get("42")["title"] == "Answer"
