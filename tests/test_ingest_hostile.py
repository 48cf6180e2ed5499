"""Hostile input to every ingest path: deep JSON, NUL and lone surrogates, infinite or absurd
numbers. Never a 500, never a good event lost because of a bad neighbour, on both databases."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from conftest import make_app, new_event_id
from flask import Flask
from sqlalchemy import select

from storefront_recs import Recs, ValidationError
from storefront_recs.models import Event

URL = "/recs/api/v1/events"


def stored(app: Flask) -> dict[str, list[tuple]]:
    with app.extensions["storefront_recs"].engine.connect() as conn:
        rows = conn.execute(select(Event.event_id, Event.item_id, Event.quantity, Event.value)).all()
    found: dict[str, list[tuple]] = {}
    for event_id, *rest in rows:
        found.setdefault(event_id, []).append(tuple(rest))
    return found


def test_twenty_thousand_nested_brackets_get_400_not_a_recursion_error(client) -> None:
    response = client.post(URL, data=b"[" * 20_000, content_type="application/json")
    assert response.status_code == 400
    assert "nested deeper" in response.json["error"]
    response = client.post(URL, data=b'{"events": [' + b"[" * 20_000 + b"]]}", content_type="text/plain")
    assert response.status_code == 400


def test_an_event_nested_too_deeply_is_rejected_alone(client, app: Flask) -> None:
    good = new_event_id()
    deep: object = "x"
    for _ in range(20):
        deep = [deep]
    events = [{"event_id": good, "type": "view", "item_id": "sku-1"},
              {"event_id": new_event_id(), "type": "view", "item_id": "sku-2", "context": {"page": deep}}]
    body = client.post(URL, json={"events": events}).json
    assert body["accepted"] == 1
    assert [r["index"] for r in body["rejected"]] == [1]
    assert "nested deeper than 16" in body["rejected"][0]["reason"]
    assert list(stored(app)) == [good]


# JSON text, so that the lone surrogate reaches the server as JSON spells it.
BAD_TEXT_EVENTS = [
    ('{"event_id": "%s", "type": "view", "item_id": "x\\u0000"}', "NUL"),
    ('{"event_id": "%s", "type": "view", "item_id": "sku\\ud800"}', "surrogate"),
    ('{"event_id": "%s", "type": "view", "item_id": "sku-1", "context": {"page": "/p\\u0000"}}', "NUL"),
    ('{"event_id": "%s", "type": "view", "item_id": "sku-1", "context": {"pa\\udfffge": "/p"}}', "surrogate"),
    ('{"event_id": "%s", "type": "purchase", "items": [{"item_id": "a\\udc80b"}]}', "surrogate"),
]


@pytest.mark.parametrize(("template", "word"), BAD_TEXT_EVENTS)
def test_nul_and_lone_surrogates_are_rejected_per_event_and_the_good_neighbours_kept(
    client, app: Flask, template: str, word: str
) -> None:
    before, after = new_event_id(), new_event_id()
    bad = template.replace("%s", new_event_id())
    body = ('{"events": [{"event_id": "' + before + '", "type": "view", "item_id": "sku-1"}, ' + bad + ', '
            '{"event_id": "' + after + '", "type": "add_to_cart", "item_id": "sku-2"}]}')
    response = client.post(URL, data=body.encode(), content_type="application/json")
    assert response.status_code == 200, response.data
    result = response.json
    assert result["accepted"] == 2
    assert [r["index"] for r in result["rejected"]] == [1]
    assert word in result["rejected"][0]["reason"]
    assert sorted(stored(app)) == sorted([before, after])


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"type": "purchase", "items": [{"item_id": "sku-1", "quantity": 10_000, "price": 1.7e308}]}, "price"),
        ({"type": "purchase", "items": [{"item_id": "sku-1", "quantity": 10_000, "price": 1e9}]}, "price x quantity"),
        ({"type": "purchase", "item_id": "sku-1", "value": 1e300}, "value"),
        ({"type": "add_to_cart", "item_id": "sku-1", "quantity": 10_001}, "quantity"),
        ({"type": "purchase", "items": [{"item_id": "sku-1", "quantity": 20_000}]}, "quantity"),
    ],
)
def test_numbers_over_the_configured_bounds_are_rejected(client, app: Flask, event: dict, field: str) -> None:
    good = new_event_id()
    events = [{"event_id": new_event_id(), **event}, {"event_id": good, "type": "view", "item_id": "sku-1"}]
    result = client.post(URL, json={"events": events}).json
    assert result["accepted"] == 1
    assert [r["index"] for r in result["rejected"]] == [0]
    assert field in result["rejected"][0]["reason"]
    assert list(stored(app)) == [good]


@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "NaN", "1e400", "1" + "0" * 5000])
def test_non_finite_and_huge_numbers_in_the_json_text_are_rejected_per_event(client, app: Flask, literal: str) -> None:
    good = new_event_id()
    body = ('{"events": [{"event_id": "' + new_event_id() + '", "type": "purchase", "item_id": "sku-1", '
            '"value": ' + literal + '}, {"event_id": "' + new_event_id() + '", "type": "view", "item_id": "sku-1", '
            '"quantity": ' + literal + '}, {"event_id": "' + good + '", "type": "view", "item_id": "sku-1"}]}')
    response = client.post(URL, data=body, content_type="application/json")
    assert response.status_code == 200
    assert [r["index"] for r in response.json["rejected"]] == [0, 1]
    assert list(stored(app)) == [good]


def test_the_bounds_are_settings(tmp_path: Path, sqlite_uri: str) -> None:
    app = make_app(sqlite_uri, tmp_path, RECS_MAX_QUANTITY=3, RECS_MAX_PRICE=10.0, RECS_MAX_VALUE=25.0)
    client = app.test_client()
    events = [
        {"event_id": new_event_id(), "type": "add_to_cart", "item_id": "a", "quantity": 3},
        {"event_id": new_event_id(), "type": "add_to_cart", "item_id": "a", "quantity": 4},
        {"event_id": new_event_id(), "type": "purchase", "items": [{"item_id": "a", "quantity": 2, "price": 10.0}]},
        {"event_id": new_event_id(), "type": "purchase", "items": [{"item_id": "a", "quantity": 3, "price": 10.0}]},
        {"event_id": new_event_id(), "type": "purchase", "items": [{"item_id": "a", "price": 10.5}]},
    ]
    result = client.post(URL, json={"events": events}).json
    assert result["accepted"] == 2
    assert [r["index"] for r in result["rejected"]] == [1, 3, 4]


def test_no_stored_value_is_infinite_and_export_user_writes_valid_json(app: Flask, recs: Recs, tmp_path: Path) -> None:
    # Bounds as loose as a float allows: price x quantity still overflows, and is refused.
    app.config["RECS_MAX_PRICE"] = app.config["RECS_MAX_VALUE"] = sys.float_info.max
    assert recs.track("purchase", user_id="u1", item_id="sku-1", event_id="order-00000001", value=5.0)
    with pytest.raises(ValidationError, match="price x quantity"):
        recs.track("purchase", user_id="u1", items=[{"item_id": "sku-1", "quantity": 10_000, "price": 1.7e308}])
    with app.extensions["storefront_recs"].engine.connect() as conn:
        values = conn.execute(select(Event.value)).scalars().all()
    assert values and all(math.isfinite(v) for v in values if v is not None)
    out = tmp_path / "export.json"
    result = app.test_cli_runner().invoke(args=["recs", "export-user", "u1", "--output", str(out)])
    assert result.exit_code == 0, result.output
    json.loads(out.read_text(), parse_constant=lambda name: pytest.fail(f"export holds {name}"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"item_id": "x\x00"}, "NUL"),
        ({"item_id": "sku\ud800"}, "surrogate"),
        ({"item_id": "sku-1", "context": {"page": "/\x00"}}, "NUL"),
        ({"item_id": "sku-1", "value": math.inf}, "value"),
        ({"item_id": "sku-1", "value": math.nan}, "value"),
        ({"item_id": "sku-1", "quantity": 10**30}, "quantity"),
        ({"items": [{"item_id": "sku-1", "quantity": 10_000, "price": 1.7e308}]}, "price"),
    ],
)
def test_track_refuses_the_same_values_with_a_validation_error(app: Flask, recs: Recs, kwargs, message) -> None:
    with pytest.raises(ValidationError, match=message):
        recs.track("purchase", user_id="u1", **kwargs)
    assert stored(app) == {}


def test_a_row_the_database_refuses_loses_no_neighbour(postgres_url: str, tmp_path: Path) -> None:
    # line_no is a SMALLINT: PostgreSQL refuses a 33,000th purchase line, SQLite does not.
    # Validation cannot know every database's limits; the batch is then stored event by event.
    app = make_app(postgres_url, tmp_path, RECS_MAX_PURCHASE_LINES=40_000, RECS_MAX_BODY_BYTES=2_000_000,
                   RECS_MAX_EVENT_BYTES=2_000_000)
    client = app.test_client()
    before, huge, after = new_event_id(), new_event_id(), new_event_id()
    events = [
        {"event_id": before, "type": "view", "item_id": "sku-1"},
        {"event_id": huge, "type": "purchase", "items": [{"item_id": "s"}] * 33_000},
        {"event_id": after, "type": "view", "item_id": "sku-2"},
        {"event_id": before, "type": "view", "item_id": "sku-1"},
    ]
    response = client.post(URL, json={"events": events})
    assert response.status_code == 200
    assert response.json["accepted"] == 2 and response.json["duplicates"] == 1
    assert [r["index"] for r in response.json["rejected"]] == [1]
    assert "database refused" in response.json["rejected"][0]["reason"]
    assert sorted(stored(app)) == sorted([before, after])
    app.extensions["storefront_recs"].engine.dispose()


def run(app: Flask, *args: str):  # type: ignore[no-untyped-def]
    return app.test_cli_runner().invoke(args=["recs", *args])


def test_import_events_rejects_nul_bad_utf8_and_unbounded_numbers_line_by_line(app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(
        b"user_id,item_id,type,timestamp,quantity,value,event_id\n"
        b"u1,sku-1,view,2024-03-01T10:00:00Z,1,,evt-00000001\n"
        b"u1,sku\x00,view,2024-03-01T10:00:00Z,1,,\n"  # 3: NUL
        b"u1,sku-\xff\xfe,view,2024-03-01T10:00:00Z,1,,\n"  # 4: not UTF-8
        b"u1,sku-1,purchase,2024-03-01T10:00:00Z,inf,,\n"  # 5
        b"u1,sku-1,purchase,2024-03-01T10:00:00Z,1,1e400,\n"  # 6
        b"u1,sku-1,purchase,2024-03-01T10:00:00Z,\xef\xbc\x95,,\n"  # 7: full-width 5
        b"u1,sku-1,purchase,2024-03-01T10:00:00Z,1,1e13,\n"  # 8: over RECS_MAX_VALUE
        b"u1,sku-1,purchase,2024-03-01T10:00:00Z,1,nan,\n"  # 9
        b"u2,sku-2,view,2024-03-01T10:00:00Z,1,,evt-00000002\n"
    )
    result = run(app, "import-events", str(path))
    assert result.exit_code == 1, result.output
    assert "stored 2" in result.output and "rejected 7" in result.output, result.output
    for line in ("line 3: user_id and item_id", "line 4: user_id and item_id", "line 5: quantity",
                 "line 6: value", "line 7: quantity", "line 8: value", "line 9: value"):
        assert line in result.output
    assert sorted(stored(app)) == ["evt-00000001", "evt-00000002"]


def test_import_catalog_rejects_deep_lines_nul_and_bad_utf8_line_by_line(app: Flask, recs: Recs, tmp_path: Path) -> None:
    path = tmp_path / "catalog.jsonl"
    path.write_bytes(
        b'{"id": "sku-1", "title": "Mug"}\n'
        + b'{"id": "sku-2", "title": ' + b"[" * 20_000 + b"\n"
        + b'{"id": "sku-3", "title": "Mu\\u0000g"}\n'
        + b'{"id": "sku-4", "title": "Mu\\ud800g"}\n'
        + b'{"id": "sku-5", "title": "Mu\xffg"}\n'
        + b'{"id": "sku-6", "title": "Bowl"}\n'
    )
    result = run(app, "import-catalog", str(path))
    assert result.exit_code == 1, result.output
    assert "stored 2" in result.output and "rejected 4" in result.output, result.output
    assert "line 2: not valid JSON: JSON nested deeper" in result.output
    assert "line 3: text must not contain NUL" in result.output
    assert "line 4: text must be valid Unicode" in result.output
    assert "line 5: " in result.output
    assert recs.catalog.count() == 2


@pytest.mark.parametrize("anonymous_id", ["a\x00b", "x" * 65, "sku\ud800", ""])
def test_an_anonymous_id_no_database_can_store_is_a_validation_error(app: Flask, recs: Recs, anonymous_id: str) -> None:
    with pytest.raises(ValidationError, match="anonymous_id"):
        recs.track("view", anonymous_id=anonymous_id, item_id="sku-1")
    with pytest.raises(ValidationError, match="anonymous_id"):
        recs.for_you(anonymous_id=anonymous_id)
    assert stored(app) == {}


def test_an_unhashed_user_id_no_database_can_store_is_a_validation_error(app: Flask, recs: Recs) -> None:
    app.config["RECS_HASH_USER_IDS"] = False
    with pytest.raises(ValidationError, match="user_id"):
        recs.track("view", user_id="u\x00", item_id="sku-1")
    assert recs.track("view", user_id="u1", item_id="sku-1")
