"""Property tests of the ingest parser (hypothesis): any body gets an answer that is not a 5xx;
any JSON batch gets a clear verdict per event, and the good events are stored exactly once.

RECS_HYPOTHESIS_EXAMPLES sets the number of examples of the HTTP properties (default 60)."""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from storefront_recs.models import Event
from storefront_recs.tracking.ingest import Limits, check_events
from storefront_recs.web.api import parse_envelope

EXAMPLES = int(os.environ.get("RECS_HYPOTHESIS_EXAMPLES", "60"))
URL = "/recs/api/v1/events"
HTTP_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                                HealthCheck.data_too_large])

# Any text: NUL, lone surrogates, non-BMP characters included.
text = st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()),
               max_size=20)
numbers = st.one_of(st.integers(min_value=-(10**40), max_value=10**40),
                    st.floats(allow_nan=True, allow_infinity=True))
json_values = st.recursive(
    st.none() | st.booleans() | numbers | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=20,
)

ids = st.uuids().map(str)
item_ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
good_events = st.one_of(
    st.fixed_dictionaries({"event_id": ids, "type": st.sampled_from(["view", "add_to_cart", "click", "impression"]),
                           "item_id": item_ids},
                          optional={"quantity": st.integers(1, 10_000),
                                    "context": st.fixed_dictionaries({}, optional={"page": st.just("/p/1"),
                                                                                     "position": st.integers(0, 1000)})}),
    st.fixed_dictionaries({"event_id": ids, "type": st.just("purchase"),
                           "items": st.lists(st.fixed_dictionaries(
                               {"item_id": item_ids},
                               optional={"quantity": st.integers(1, 100),
                                         "price": st.floats(0, 1e6, allow_nan=False)}), min_size=1, max_size=4)}),
    st.fixed_dictionaries({"event_id": ids, "type": st.sampled_from(["page_view", "search"])}),
)


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    """A good event with one field set to anything: near-valid input, valid or not."""
    event = dict(draw(good_events))
    event["event_id"] = draw(ids)
    field = draw(st.sampled_from(["event_id", "type", "item_id", "items", "quantity", "value", "ts", "context",
                                  "extra"]))
    event[field] = draw(json_values)
    return event


batches = st.lists(
    st.one_of(good_events.map(lambda e: ("good", e)), mutated_events().map(lambda e: ("mutated", e)),
              json_values.map(lambda e: ("junk", e))),
    max_size=12,
).filter(lambda batch: len({e["event_id"] for kind, e in batch if kind == "good"}) ==
         sum(kind == "good" for kind, _ in batch))


@given(st.lists(json_values, max_size=8))
@settings(max_examples=300, deadline=None)
def test_check_events_gives_every_event_exactly_one_verdict(raw: list[Any]) -> None:
    valid, rejected = check_events(raw, Limits.from_config(DEFAULT_CONFIG))
    indexes = [index for index, _ in valid] + [r["index"] for r in rejected]
    assert sorted(indexes) == list(range(len(raw)))
    assert all(isinstance(r["reason"], str) and r["reason"] for r in rejected)


@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
@settings(max_examples=300, deadline=None)
def test_parse_envelope_returns_a_list_or_raises_value_error(body: bytes) -> None:
    try:
        events = parse_envelope(body)
    except ValueError:
        return
    assert isinstance(events, list)


def stored_lines(app: Flask, event_ids: set[str]) -> Counter[tuple[str, int]]:
    with app.extensions["storefront_recs"].engine.connect() as conn:
        rows = conn.execute(select(Event.event_id, Event.line_no).where(Event.event_id.in_(event_ids)))
        return Counter((event_id, line_no) for event_id, line_no in rows)


def test_any_batch_gets_a_verdict_per_event_and_good_events_are_stored_exactly_once(app: Flask) -> None:
    client = app.test_client()

    @given(batches)
    @HTTP_SETTINGS
    def post(batch: list[tuple[str, Any]]) -> None:
        events = [event for _, event in batch]
        body = json.dumps({"events": events})  # NaN, Infinity and lone surrogates as JSON may carry them
        response = client.post(URL, data=body, content_type="text/plain")
        assert response.status_code == 200, response.data
        result = response.json
        rejected = {r["index"]: r["reason"] for r in result["rejected"]}
        assert all(isinstance(reason, str) and reason for reason in rejected.values())
        assert result["accepted"] + result["duplicates"] + len(rejected) == len(events)
        assert not any(kind == "good" and index in rejected for index, (kind, _) in enumerate(batch)), rejected
        kept = [event for index, event in enumerate(events) if index not in rejected]
        kept_ids = {event["event_id"] for event in kept}
        lines = stored_lines(app, kept_ids)
        assert set(lines.values()) <= {1}  # no line stored twice
        for event in kept:
            count = len(event["items"]) if event.get("type") == "purchase" and event.get("items") else 1
            assert {(event["event_id"], n) for n in range(count)} <= set(lines), event
        # The client retries the whole batch: nothing new, every kept event a duplicate.
        again = client.post(URL, data=body, content_type="text/plain").json
        assert again["accepted"] == 0 and again["duplicates"] == len(kept)
        assert stored_lines(app, kept_ids) == lines

    post()


def test_any_body_is_answered_without_a_server_error(app: Flask) -> None:
    client = app.test_client()

    @given(st.binary(max_size=2000) | st.text(max_size=500).map(lambda t: t.encode("utf-8", "surrogatepass")),
           st.sampled_from(["application/json", "text/plain", "", "application/x-www-form-urlencoded"]))
    @HTTP_SETTINGS
    def post(body: bytes, content_type: str) -> None:
        response = client.post(URL, data=body, content_type=content_type)
        assert response.status_code in (200, 400, 413, 415), response.data
        assert response.is_json

    post()


DEFAULT_CONFIG: dict[str, Any] = {}


def _defaults() -> None:
    from storefront_recs.config import apply_defaults

    apply_defaults(DEFAULT_CONFIG)


_defaults()
