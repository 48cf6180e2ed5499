"""The admin dashboard: denied unless the host says yes, CSRF on every form, charts and the
inspector on a trained shop, retrain and pause buttons."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import build_trained_shop, copy_of_shop, make_app
from flask import Flask, session
from sqlalchemy import select
from test_serving import SHOP_CONFIG, seed_shop

from storefront_recs import Recs
from storefront_recs.db import utcnow
from storefront_recs.models import Experiment, ModelRun

EXPERIMENT = {"key": "blend", "name": "Blend test", "variants": [
    {"name": "control", "percent": 50},
    {"name": "holdout", "percent": 50, "overrides": {"holdout": "popular"}},
]}
HTML = {"Accept": "text/html"}


def recs_of(app: Flask) -> Recs:
    return app.extensions["storefront_recs"].recs  # type: ignore[no-any-return]


def allow_admins(app: Flask) -> None:
    """The shop's rule: whoever has the 'admin' flag in their session."""
    recs_of(app).admin_check(lambda: session.get("admin") is True)


def admin_client(app: Flask):  # type: ignore[no-untyped-def]
    client = app.test_client()
    with client.session_transaction() as s:
        s["admin"] = True
    return client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


def status_of(app: Flask, key: str) -> str:
    with app.extensions["storefront_recs"].engine.connect() as conn:
        return str(conn.scalar(select(Experiment.status).where(Experiment.key == key)))


@pytest.mark.parametrize("path", ["/recs/admin/", "/recs/admin/why?user_id=u1&item=x"])
def test_the_dashboard_is_denied_by_default(sqlite_app: Flask, path: str) -> None:
    client = sqlite_app.test_client()
    page = client.get(path, headers=HTML)
    assert page.status_code == 403 and "Not allowed" in page.text
    assert client.get(path, headers={"Accept": "application/json"}).json == {
        "error": "the admin dashboard is only for the shop's administrators"}
    # A session flag means nothing until the shop registers a check that reads it.
    assert admin_client(sqlite_app).get(path).status_code == 403


def test_every_action_is_denied_without_the_host_check(sqlite_app: Flask) -> None:
    sqlite_app.config["RECS_EXPERIMENTS"] = [EXPERIMENT]
    recs_of(sqlite_app).experiments()
    client = admin_client(sqlite_app)
    for path in ("/recs/admin/train", "/recs/admin/experiments/blend/pause", "/recs/admin/experiments"):
        assert client.post(path, data={"csrf_token": "x"}).status_code == 403
    assert status_of(sqlite_app, "blend") == "running"


def test_the_host_check_and_the_config_callable_open_it(sqlite_app: Flask) -> None:
    allow_admins(sqlite_app)
    assert sqlite_app.test_client().get("/recs/admin/").status_code == 403  # not an admin
    page = admin_client(sqlite_app).get("/recs/admin/")
    assert page.status_code == 200 and "Experiments" in page.text
    assert page.headers["Cache-Control"] == "no-store" and "frame-ancestors 'none'" in page.headers[
        "Content-Security-Policy"]


def test_a_config_callable_decides_and_a_failing_check_denies(tmp_path: Path, sqlite_uri: str) -> None:
    app = make_app(sqlite_uri, tmp_path, RECS_ADMIN_CHECK="test_admin:_always")
    assert app.test_client().get("/recs/admin/").status_code == 200
    app.config["RECS_ADMIN_CHECK"] = _broken
    assert app.test_client().get("/recs/admin/").status_code == 403


def _always() -> bool:
    return True


def _broken() -> bool:
    raise RuntimeError("the shop's user table is down")


def test_forms_without_a_valid_csrf_token_are_rejected(sqlite_app: Flask) -> None:
    allow_admins(sqlite_app)
    sqlite_app.config["RECS_EXPERIMENTS"] = [EXPERIMENT]
    client = admin_client(sqlite_app)
    token = csrf_of(client.get("/recs/admin/").text)
    pause = "/recs/admin/experiments/blend/pause"
    assert client.post(pause).status_code == 400
    assert client.post(pause, data={"csrf_token": "forged"}).status_code == 400
    # A token from another admin's session is no good here either.
    other = admin_client(sqlite_app)
    assert other.post(pause, data={"csrf_token": token}).status_code == 400
    assert status_of(sqlite_app, "blend") == "running"
    done = client.post(pause, data={"csrf_token": token})
    assert done.status_code == 303 and done.headers["Location"] == "/recs/admin/"
    assert "Experiment blend paused." in client.get("/recs/admin/").text
    assert status_of(sqlite_app, "blend") == "paused"
    assert sqlite_app.test_client().get("/recs/api/v1/trending").json["variant"] is None
    assert client.post("/recs/admin/experiments/blend/resume", headers={"X-CSRF-Token": token}).status_code == 303
    assert status_of(sqlite_app, "blend") == "running"


def test_an_experiment_can_be_created_in_the_dashboard(sqlite_app: Flask) -> None:
    allow_admins(sqlite_app)
    client = admin_client(sqlite_app)
    token = csrf_of(client.get("/recs/admin/").text)
    variants = '[{"name": "a", "percent": 50}, {"name": "b", "percent": 50, "overrides": {"holdout": "none"}}]'
    created = client.post("/recs/admin/experiments", data={
        "csrf_token": token, "key": "new-test", "name": "New test", "variants": variants, "widgets": ["trending"]})
    assert created.status_code == 303
    experiment = recs_of(sqlite_app).experiment("new-test")
    assert experiment.source == "dashboard" and experiment.widgets == frozenset({"trending"})
    bad = client.post("/recs/admin/experiments", headers=HTML, data={
        "csrf_token": token, "key": "broken", "variants": '[{"name": "only", "percent": 100}]'})
    assert bad.status_code == 400 and "at least two variants" in bad.text
    page = client.get("/recs/admin/").text
    assert "New test" in page and "declared in dashboard" in page


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_trained_shop(tmp_path_factory.mktemp("admin-shop"), lambda recs: seed_shop(recs, users=40),
                              **SHOP_CONFIG)


@pytest.fixture
def shop(trained: Path, tmp_path: Path) -> Flask:
    app = copy_of_shop(trained, tmp_path, **SHOP_CONFIG, RECS_EXPERIMENTS=[EXPERIMENT],
                       RECS_EXPERIMENT_MIN_VISITORS=50)
    allow_admins(app)
    return app


def test_the_dashboard_shows_runs_traffic_widgets_campaigns_experiments_and_charts(shop: Flask) -> None:
    recs = recs_of(shop)
    now = utcnow() - timedelta(hours=1)
    for i in range(12):
        user = f"u{i}"
        variant = recs.assign_variant("blend", user_id=user)
        recs.track("impression", user_id=user, item_id="tea-1", ts=now,
                   context={"widget": "similar", "variant": f"blend:{variant}"})
        recs.track("impression", user_id=user, item_id="tea-2", ts=now, context={"campaign": "weekly"})
        if i % 3 == 0:
            recs.track("click", user_id=user, item_id="tea-1", ts=now + timedelta(minutes=1),
                       context={"widget": "similar", "variant": f"blend:{variant}"})
            recs.track("purchase", user_id=user, item_id="tea-1", value=12.5, ts=now + timedelta(minutes=5))
    page = admin_client(shop).get("/recs/admin/").text
    assert page.count('<svg class="recs-chart"') >= 8  # runs, traffic, widgets, campaigns, top items, 3 per experiment
    assert "model NDCG@10" in page and "popularity NDCG@10" in page
    assert re.search(r"<td>similar</td><td class=\"num\">12</td><td class=\"num\">4</td><td class=\"num\">33.33%</td>", page)
    assert re.search(r"<td>weekly</td><td class=\"num\">12</td><td class=\"num\">0</td>", page)
    assert "holdout: popular" in page and "baseline" in page
    assert "fewer than the 50" in page  # the minimum-sample warning
    with shop.extensions["storefront_recs"].engine.connect() as conn:
        version = conn.scalar(select(ModelRun.version).where(ModelRun.status == "published"))
    assert version in page and "published" in page
    assert "Tea thing 1" in page  # top items


def test_why_this_item_shows_sources_rules_and_position(shop: Flask) -> None:
    recs = recs_of(shop)
    shop.config["RECS_BOOST_CATEGORIES"] = {}
    picks = recs.for_you(user_id="u2", n=5)
    target = picks[0].item_id
    client = admin_client(shop)
    page = client.get("/recs/admin/why", query_string={"user_id": "u2", "item": target}).text
    assert "Shown at position 1" in page
    assert re.search(r"<td>als</td><td class=\"num\">1.0</td>\s*<td class=\"num\">\d\.\d{4}</td>", page)
    # seed_shop: user 2 loves books and bought books-0, which for-you must leave out.
    bought = client.get("/recs/admin/why", query_string={"user_id": "u2", "item": "books-0"}).text
    assert "bought before: excluded from for-you" in bought and "Not in this visitor's top 50" in bought
    unknown = client.get("/recs/admin/why", query_string={"user_id": "u2", "item": "no-such-item"}).text
    assert "not in the catalogue" in unknown


def test_retrain_now_starts_a_training_run(shop: Flask) -> None:
    client = admin_client(shop)
    token = csrf_of(client.get("/recs/admin/").text)
    with shop.extensions["storefront_recs"].engine.connect() as conn:
        before = conn.scalar(select(ModelRun.id).order_by(ModelRun.id.desc()).limit(1))
    started = client.post("/recs/admin/train", data={"csrf_token": token})
    assert started.status_code == 303
    deadline = time.monotonic() + 120
    while True:
        with shop.extensions["storefront_recs"].engine.connect() as conn:
            run = conn.execute(select(ModelRun).where(ModelRun.id > before, ModelRun.status != "running")).first()
        if run is not None or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert run is not None and run.trigger == "dashboard" and run.status in ("published", "rejected")
