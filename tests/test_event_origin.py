"""Event ids are namespaced by who sent them, and browser-reported purchases are untrusted:
revenue comes from the shop's own purchases when it sends them, browser values are capped."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

from conftest import new_event_id
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from test_email import email_app, path_of  # noqa: F401  (fixture)
from test_privacy_helpers import cookie, set_anonymous_cookie

from storefront_recs import Recs
from storefront_recs import db as dbmod
from storefront_recs.db import utcnow
from storefront_recs.experiments import insights
from storefront_recs.models import Event
from storefront_recs.tracking.revenue import RevenuePolicy

URL = "/recs/api/v1/events"
ANON = "browser-visitor-000001"
HALVES = {"key": "halves", "variants": [{"name": "A", "percent": 100}, {"name": "B", "percent": 0}]}


def stored(app: Flask) -> list[tuple]:
    with app.extensions["storefront_recs"].engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(Event.event_id, Event.type, Event.origin, Event.source).order_by(Event.id))]


def test_a_browser_cannot_squat_the_shops_event_id(app: Flask, recs: Recs) -> None:
    browser = app.test_client()
    squat = browser.post(URL, json={"event_id": "order-1000042", "type": "page_view"})
    assert squat.json["accepted"] == 1
    assert recs.track("purchase", user_id="u1", item_id="sku-1", event_id="order-1000042", value=20.0) is True
    assert recs.track("purchase", user_id="u1", item_id="sku-1", event_id="order-1000042", value=20.0) is False
    # The browser's namespace still deduplicates the browser's own retries.
    again = browser.post(URL, json={"event_id": "order-1000042", "type": "page_view"}).json
    assert (again["accepted"], again["duplicates"]) == (0, 1)
    assert stored(app) == [("order-1000042", "page_view", "browser", "web"),
                           ("order-1000042", "purchase", "shop", "server")]


def test_imports_and_track_share_the_shops_namespace(app: Flask, recs: Recs, tmp_path: Path) -> None:
    app.test_client().post(URL, json={"event_id": "order-00000007", "type": "page_view"})
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id,type,timestamp,value,event_id\nu1,sku-1,purchase,2024-03-01T10:00:00Z,5,"
                    "order-00000007\n")
    result = app.test_cli_runner().invoke(args=["recs", "import-events", str(path)])
    assert "stored 1" in result.output, result.output
    assert recs.track("purchase", user_id="u1", item_id="sku-1", event_id="order-00000007") is False
    assert sorted(o for _, _, o, _ in stored(app)) == ["browser", "shop"]


def browser_of(app: Flask) -> FlaskClient:
    client = app.test_client()
    set_anonymous_cookie(client, ANON)
    return client


def post(client: FlaskClient, **event: object) -> None:
    assert client.post(URL, json={"event_id": new_event_id(), **event}).json["accepted"] == 1


def test_experiment_and_dashboard_revenue_prefer_the_shops_purchases_and_cap_the_browsers(app: Flask) -> None:
    app.config.update(RECS_EXPERIMENTS=[HALVES], RECS_ATTRIBUTION_WINDOW=3600)
    recs: Recs = app.extensions["storefront_recs"].recs
    assert recs.assign_variant("halves", anonymous_id=ANON) == "A"
    browser = browser_of(app)
    post(browser, type="click", item_id="sku-1", context={"variant": "halves:A", "widget": "for-you"})
    post(browser, type="purchase", item_id="sku-1", value=1_000_000.0)  # what a browser says it paid

    def revenue() -> tuple[float, float, float]:
        a = recs.experiment_results("halves").variant("A")
        now = utcnow()
        with app.extensions["storefront_recs"].engine.connect() as conn:
            [funnel] = insights.funnels(conn, "widget", now - timedelta(days=1), now + timedelta(minutes=1),
                                        3600, revenue_policy=RevenuePolicy.from_config(app.config))
        return a.revenue, a.credited_revenue, funnel.revenue

    # Only the browser reported a purchase: it counts, capped.
    assert revenue() == (10_000.0, 10_000.0, 10_000.0)
    # The shop reports its orders itself: from now on only those count.
    assert recs.track("purchase", anonymous_id=ANON, item_id="sku-1", value=25.0, event_id="order-555")
    assert revenue() == (25.0, 25.0, 25.0)
    app.config["RECS_REVENUE_SOURCE"] = "all"
    assert revenue() == (10_025.0, 10_025.0, 10_025.0)
    app.config.update(RECS_REVENUE_SOURCE="browser", RECS_MAX_BROWSER_PURCHASE_VALUE=50.0)
    assert revenue() == (50.0, 50.0, 50.0)


def test_the_migration_keeps_history_and_marks_browser_events_untrusted(database_uri: str, tmp_path: Path) -> None:
    from sqlalchemy import text

    engine = dbmod.make_engine(database_uri)
    dbmod.upgrade(engine, "0001")
    with engine.begin() as conn:
        for event_id, source in (("evt-web-0001", "web"), ("evt-srv-0001", "server"), ("imp-0000000001", "import")):
            conn.execute(text("INSERT INTO recs_events (event_id, line_no, type, quantity, value, ts, source) "
                              "VALUES (:e, 0, 'purchase', 1, :v, :ts, :s)"),
                         {"e": event_id, "s": source, "ts": utcnow(), "v": math.inf if source == "web" else 5.0})
    dbmod.upgrade(engine)
    with engine.begin() as conn:
        origins = dict(conn.execute(text("SELECT event_id, origin FROM recs_events")).all())
        assert origins == {"evt-web-0001": "browser", "evt-srv-0001": "shop", "imp-0000000001": "shop"}
        values = dict(conn.execute(text("SELECT event_id, value FROM recs_events")).all())
        assert values == {"evt-web-0001": None, "evt-srv-0001": 5.0, "imp-0000000001": 5.0}  # no Infinity left
        # Now a browser and the shop may both hold one id; a downgrade keeps the shop's.
        conn.execute(text("INSERT INTO recs_events (event_id, line_no, type, quantity, ts, source, origin) "
                          "VALUES ('evt-srv-0001', 0, 'page_view', 1, :ts, 'web', 'browser')"), {"ts": utcnow()})
    dbmod.downgrade(engine, "0001")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT event_id, source FROM recs_events ORDER BY event_id")).all()
    assert [tuple(r) for r in rows] == [("evt-srv-0001", "server"), ("evt-web-0001", "web"),
                                        ("imp-0000000001", "import")]
    dbmod.upgrade(engine)
    assert dbmod.is_up_to_date(engine)
    engine.dispose()


def test_email_attribution_prefers_the_shops_purchase_and_caps_the_browsers(email_app: Flask) -> None:  # noqa: F811
    recs: Recs = email_app.extensions["storefront_recs"].recs
    browser = email_app.test_client()
    browser.get(path_of(recs.email_block("eve", n=1, campaign="weekly").items[0].click_url))
    post(browser, type="purchase", item_id="coffee-1", value=1_000_000.0)
    assert recs.email_attribution()[0]["revenue"] == 10_000.0
    assert recs.track("purchase", anonymous_id=cookie(browser), item_id="coffee-1", value=12.0, event_id="order-000009")
    assert recs.email_attribution()[0]["revenue"] == 12.0
