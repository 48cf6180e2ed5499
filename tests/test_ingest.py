"""POST /recs/api/v1/events: accounting, dedup, limits, identity."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import make_app, new_event_id
from flask import Flask
from sqlalchemy import func, select, text
from werkzeug.serving import make_server

from storefront_recs.models import Event

URL = "/recs/api/v1/events"


def stored(app: Flask) -> list[tuple]:
    engine = app.extensions["storefront_recs"].engine
    with engine.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(Event.event_id, Event.line_no, Event.type, Event.item_id, Event.quantity, Event.value)
                .order_by(Event.event_id, Event.line_no)
            )
        ]


def count_events(app: Flask) -> int:
    with app.extensions["storefront_recs"].engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Event)).scalar_one())


def test_batch_with_duplicates_and_malformed_events_stores_exactly_the_valid_unique_ones(client, app) -> None:
    a, b, c = new_event_id(), new_event_id(), new_event_id()
    events = [
        {"event_id": a, "type": "view", "item_id": "sku-1"},
        {"event_id": a, "type": "view", "item_id": "sku-1"},  # duplicate in the batch
        {"type": "view", "item_id": "sku-2"},  # no event_id
        {"event_id": b, "type": "teleport", "item_id": "sku-2"},  # unknown type
        {"event_id": new_event_id(), "type": "view"},  # view without item
        "not an object",
        {"event_id": new_event_id(), "type": "add_to_cart", "item_id": "x", "quantity": 0},
        {"event_id": new_event_id(), "type": "view", "item_id": "x", "ts": "2999-01-01T00:00:00Z"},
        {
            "event_id": c,
            "type": "purchase",
            "items": [{"item_id": "sku-3", "quantity": 2, "price": 5.0}, {"item_id": "sku-4"}],
        },
    ]
    response = client.post(URL, json={"events": events})
    assert response.status_code == 200
    body = response.json
    assert body["accepted"] == 2
    assert body["duplicates"] == 1
    assert [r["index"] for r in body["rejected"]] == [2, 3, 4, 5, 6, 7]
    assert "event_id" in body["rejected"][0]["reason"]
    assert "type" in body["rejected"][1]["reason"]
    assert "future" in body["rejected"][5]["reason"]
    assert stored(app) == sorted(
        [(a, 0, "view", "sku-1", 1, None), (c, 0, "purchase", "sku-3", 2, 10.0), (c, 1, "purchase", "sku-4", 1, None)]
    )

    # The same batch again: everything valid is now a duplicate, nothing new is stored.
    again = client.post(URL, json={"events": events}).json
    assert (again["accepted"], again["duplicates"]) == (0, 3)
    assert count_events(app) == 3


def test_single_event_as_text_plain_is_accepted(client, app) -> None:
    body = json.dumps({"event_id": new_event_id(), "type": "view", "item_id": "sku-9"})
    response = client.post(URL, data=body, content_type="text/plain")
    assert response.json == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert count_events(app) == 1


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{not json", "text/plain", 400),
        (b"[1, 2]", "application/json", 400),
        (b'{"events": {"a": 1}}', "application/json", 400),
        (b"{}", "application/xml", 415),
    ],
)
def test_bad_envelopes_get_a_json_reason(client, app, body: bytes, content_type: str, status: int) -> None:
    response = client.post(URL, data=body, content_type=content_type)
    assert response.status_code == status
    assert response.is_json and response.json["error"]
    assert count_events(app) == 0


def test_unknown_fields_are_never_written(client, app) -> None:
    client.post(
        URL,
        json={
            "event_id": new_event_id(),
            "type": "view",
            "item_id": "sku-1",
            "source": "import",
            "id": 999999,
            "context": {"page": "/p/sku-1", "admin": True, "user_id": "victim"},
        },
    )
    with app.extensions["storefront_recs"].engine.connect() as conn:
        row = conn.execute(select(Event.id, Event.source, Event.context)).one()
    assert row.id != 999999
    assert row.source == "web"
    assert row.context == {"page": "/p/sku-1"}


def _body_of_size(size: int) -> bytes:
    """A valid single-event body of exactly ``size`` bytes (padding in context.page)."""
    base = {"event_id": "fixed-event-0001", "type": "view", "item_id": "sku-1", "context": {"page": ""}}
    empty = len(json.dumps(base).encode())
    base["context"]["page"] = "/" + "p" * (size - empty - 1)
    body = json.dumps(base).encode()
    assert len(body) == size
    return body


def test_body_size_limit_at_the_limit_and_one_past_it(tmp_path: Path, sqlite_uri: str) -> None:
    app = make_app(sqlite_uri, tmp_path, RECS_MAX_BODY_BYTES=1500, RECS_MAX_EVENT_BYTES=8192)
    client = app.test_client()
    at_limit = client.post(URL, data=_body_of_size(1500), content_type="text/plain")
    assert at_limit.status_code == 200 and at_limit.json["accepted"] == 1
    over = client.post(URL, data=_body_of_size(1501), content_type="text/plain")
    assert over.status_code == 413
    assert "1500" in over.json["error"]
    assert count_events(app) == 1


def test_event_size_limit_at_the_limit_and_one_past_it(tmp_path: Path, sqlite_uri: str) -> None:
    app = make_app(sqlite_uri, tmp_path, RECS_MAX_EVENT_BYTES=1000)

    def event(size: int, event_id: str) -> dict:
        base = {"event_id": event_id, "type": "view", "item_id": "sku-1", "context": {"page": ""}}
        base["context"]["page"] = "/" + "p" * (size - len(json.dumps(base, separators=(",", ":"))) - 1)
        return base

    response = app.test_client().post(
        URL, json={"events": [event(1000, "evt-at-limit"), event(1001, "evt-over-limit")]}
    )
    assert response.json["accepted"] == 1
    assert response.json["rejected"] == [
        {"index": 1, "reason": "event is 1001 bytes, over the limit of 1000"}
    ]


def test_batch_length_limit_at_the_limit_and_one_past_it(tmp_path: Path, sqlite_uri: str) -> None:
    app = make_app(sqlite_uri, tmp_path, RECS_MAX_BATCH_EVENTS=5)
    client = app.test_client()

    def batch(n: int) -> dict:
        return {"events": [{"event_id": new_event_id(), "type": "view", "item_id": "a"} for _ in range(n)]}

    assert client.post(URL, json=batch(5)).json["accepted"] == 5
    over = client.post(URL, json=batch(6))
    assert over.status_code == 413
    assert "6 events" in over.json["error"]
    assert count_events(app) == 5


def test_oversized_chunked_body_is_refused_without_a_content_length(tmp_path: Path, sqlite_uri: str) -> None:
    app = make_app(sqlite_uri, tmp_path, RECS_MAX_BODY_BYTES=1000)
    with serve(app) as base_url:

        def chunks() -> Iterator[bytes]:
            yield b'{"event_id": "chunked-0001", "type": "view", "item_id": "a", "context": {"page": "/'
            for _ in range(100):
                yield b"x" * 100
            yield b'"}}'

        response = requests.post(base_url + URL, data=chunks(), headers={"Content-Type": "text/plain"}, timeout=10)
    assert response.status_code == 413
    assert count_events(app) == 0


class serve:
    """Serve an app over real HTTP (threaded WSGI server on loopback) for the duration of a block."""

    def __init__(self, app: Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_port}"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join()


def test_concurrent_duplicate_posts_to_two_workers_are_stored_once(database_uri: str, tmp_path: Path) -> None:
    """Two app instances (two "workers") on one database, eight threads posting the same events."""
    worker_a = make_app(database_uri, tmp_path)
    worker_b = make_app(database_uri, tmp_path / "b")
    event_ids = [new_event_id() for _ in range(20)]
    payload = {"events": [{"event_id": e, "type": "view", "item_id": f"sku-{i}"} for i, e in enumerate(event_ids)]}
    results: list[dict] = []
    errors: list[BaseException] = []
    with serve(worker_a) as url_a, serve(worker_b) as url_b:
        barrier = threading.Barrier(8)

        def post(url: str) -> None:
            try:
                barrier.wait()
                response = requests.post(url + URL, data=json.dumps(payload), headers={"Content-Type": "text/plain"}, timeout=30)
                response.raise_for_status()
                results.append(response.json())
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=post, args=(url_a if i % 2 else url_b,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors
    assert sum(r["accepted"] for r in results) == 20
    assert sum(r["duplicates"] for r in results) == 20 * 7
    engine = worker_a.extensions["storefront_recs"].engine
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*), count(DISTINCT event_id) FROM recs_events")).one() == (20, 20)
    worker_b.extensions["storefront_recs"].engine.dispose()
