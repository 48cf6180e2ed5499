"""recs.export_user(): exactly the person's data, as JSON."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from flask import Flask
from test_privacy_helpers import SERVER_ANON, seed

from storefront_recs import Recs

ALICE_EVENTS = Counter(
    {
        ("view", "sku-1"): 1,
        ("view", "sku-2"): 1,
        ("add_to_cart", "sku-3"): 1,
        ("view", "sku-4"): 1,
        ("purchase", "sku-3"): 1,
        ("view", "sku-5"): 1,
        ("view", "sku-6"): 1,
    }
)


def test_export_returns_exactly_the_users_data(app: Flask, recs: Recs) -> None:
    shop = seed(app, recs)
    export = recs.export_user("alice")

    assert json.loads(json.dumps(export)) == export  # JSON-ready as it is
    assert export["user_key"] == shop.alice_key
    assert export["anonymous_ids"] == sorted([shop.alice_browser, SERVER_ANON])
    events = export["data"]["events"]
    assert Counter((e["type"], e["item_id"]) for e in events) == ALICE_EVENTS
    assert all(e["user_key"] in (shop.alice_key, None) for e in events)
    assert {e["anonymous_id"] for e in events if e["user_key"] is None} == {shop.alice_browser, SERVER_ANON}
    assert [e["event_id"] for e in events if e["item_id"] == "sku-3" and e["type"] == "purchase"] == ["order-1001"]
    assert [(i["anonymous_id"], i["user_key"]) for i in export["data"]["identities"]] == [
        (shop.alice_browser, shop.alice_key)
    ]
    assert export["suppressed"] is False and export["erasures"] == []
    assert shop.bob_key not in json.dumps(export)


def test_export_after_erasure_shows_only_the_receipt(app: Flask, recs: Recs) -> None:
    seed(app, recs)
    receipt = recs.forget_user("alice")
    export = recs.export_user("alice")
    assert {"events", "identities"} <= set(export["data"])
    assert all(rows == [] for rows in export["data"].values())
    assert export["anonymous_ids"] == []
    assert export["suppressed"] is True
    assert export["erasures"] == [
        {"erased_at": receipt["erased_at"], "deleted": receipt["deleted"], "suppressed": True}
    ]


def test_cli_export_user_prints_json(app: Flask, recs: Recs, tmp_path: Path) -> None:
    seed(app, recs)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["recs", "export-user", "alice"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    expected = recs.export_user("alice")
    assert {k: v for k, v in printed.items() if k != "exported_at"} == {
        k: v for k, v in expected.items() if k != "exported_at"
    }
    out = tmp_path / "alice.json"
    assert runner.invoke(args=["recs", "export-user", "alice", "-o", str(out)]).exit_code == 0
    assert len(json.loads(out.read_text())["data"]["events"]) == sum(ALICE_EVENTS.values())
