"""The admin dashboard in Chromium: its SVG charts render with real size, and its pause button
works through the real form (session cookie and CSRF token)."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import make_app
from flask import session
from sqlalchemy import update

from storefront_recs import Recs
from storefront_recs.db import utcnow
from storefront_recs.models import ExperimentAssignment

from .conftest import LiveShop, watch_requests

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs/screenshots/admin-dashboard.png"
CONFIG = {"RECS_CATALOG_REFRESH_SECONDS": 0, "RECS_ALS_FACTORS": 16, "RECS_ALS_ITERATIONS": 8,
          "RECS_EXPERIMENT_MIN_VISITORS": 100}
EXPERIMENT = {"key": "blend-test", "name": "More item-item neighbours", "variants": [
    {"name": "control", "percent": 45},
    {"name": "itemitem", "percent": 45, "overrides": {"RECS_BLEND": {"als": 0.5, "itemitem": 2.0, "popularity": 0.2}}},
    {"name": "holdout", "percent": 10, "overrides": {"holdout": "popular"}},
]}
CATEGORIES = ("tea", "mug", "book", "plant")


def seed(recs: Recs) -> None:
    """A shop with two weeks of history, a trained model and an experiment with results."""
    rng = random.Random(11)
    recs.catalog.upsert([{"id": f"{c}-{i}", "title": f"{c.title()} no. {i}", "price": 4.5 + i, "category": c}
                         for c in CATEGORIES for i in range(10)])
    start = utcnow() - timedelta(days=14)
    for user in range(48):
        cat = CATEGORIES[user % 4]
        for step in range(8):
            recs.track("view" if step % 3 else "add_to_cart", user_id=f"u{user}",
                       item_id=f"{cat}-{min(int(rng.expovariate(0.3)), 9)}", ts=start + timedelta(hours=user * 6 + step))
        recs.track("purchase", user_id=f"u{user}", item_id=f"{cat}-0", value=9.5,
                   ts=start + timedelta(hours=user * 6 + 9))
    assert recs.train().published
    conversion = {"control": 0.10, "itemitem": 0.14, "holdout": 0.06}
    for visitor in range(150):
        user = f"v{visitor}"
        variant = recs.assign_variant("blend-test", user_id=user)
        assert variant is not None
        day = start + timedelta(days=rng.randrange(14), hours=rng.randrange(20))
        widget = rng.choice(("for-you", "similar", "trending"))
        context = {"widget": widget, "variant": f"blend-test:{variant}"}
        for shown in range(3):
            recs.track("impression", user_id=user, item_id=f"{rng.choice(CATEGORIES)}-{shown}", ts=day, context=context)
        if rng.random() < 0.3:
            recs.track("click", user_id=user, item_id="tea-1", ts=day + timedelta(minutes=1), context=context)
            if rng.random() < conversion[variant] * 3:
                recs.track("purchase", user_id=user, item_id="tea-1", value=round(rng.uniform(5, 40), 2),
                           ts=day + timedelta(minutes=8))
        if rng.random() < 0.2:
            recs.track("click", user_id=user, item_id="mug-2", ts=day, context={"campaign": "weekly-picks"})
    with recs._state().engine.begin() as conn:
        conn.execute(update(ExperimentAssignment).values(assigned_at=start))


@pytest.fixture(scope="module")
def dashboard_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("dashboard")
    app = make_app(f"sqlite:///{folder / 'recs.sqlite3'}", folder, **CONFIG, RECS_EXPERIMENTS=[EXPERIMENT])
    with app.app_context():
        seed(app.extensions["storefront_recs"].recs)
    app.extensions["storefront_recs"].engine.dispose()
    return folder


@pytest.fixture
def admin_shop(shop_factory: Callable[..., LiveShop], dashboard_files: Path) -> LiveShop:
    shop = shop_factory(copy_of=dashboard_files, **CONFIG, RECS_EXPERIMENTS=[EXPERIMENT])
    shop.app.extensions["storefront_recs"].recs.admin_check(lambda: session.get("admin") is True)

    @shop.app.post("/become-admin")
    def become_admin() -> str:
        session["admin"] = True
        return "ok"

    return shop


def test_the_dashboard_draws_its_charts_in_chromium(admin_shop: LiveShop, context: Any, tmp_path: Path) -> None:
    page = context.new_page()
    foreign: list[str] = []
    watch_requests(page, admin_shop, foreign)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_viewport_size({"width": 1280, "height": 900})
    denied = page.goto(f"{admin_shop.url}/recs/admin/")
    assert denied.status == 403 and "Not allowed" in page.content()
    page.goto(f"{admin_shop.url}/sentinel")
    page.evaluate("() => fetch('/become-admin', {method: 'POST'})")
    response = page.goto(f"{admin_shop.url}/recs/admin/")
    assert response.status == 200
    charts = page.locator("svg.recs-chart")
    assert charts.count() >= 8
    for index in range(charts.count()):
        box = charts.nth(index).bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 20, index
    # Marks are drawn, not empty frames: lines of the run and traffic charts, bars, intervals.
    assert page.locator("#traffic polyline.recs-series").count() >= 3
    assert page.locator("#widgets rect.recs-bar").count() == 3
    assert page.locator("#experiments g.recs-interval").count() == 9
    line = page.locator("#traffic polyline.recs-series").first.bounding_box()
    assert line is not None and line["width"] > 300
    assert "holdout: popular" in page.content()
    screenshot = SCREENSHOT if os.environ.get("RECS_UPDATE_SCREENSHOTS") == "1" else tmp_path / "admin.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 20_000

    # The pause button: a real form post with the session's CSRF token.
    page.get_by_role("button", name="Pause experiment").click()
    page.locator(".flash").wait_for()  # flashed in the session, not carried in the URL
    assert "msg=" not in page.url
    assert "Experiment blend-test paused." in page.locator(".flash").inner_text()
    assert page.get_by_role("button", name="Resume experiment").count() == 1
    assert foreign == [] and errors == []  # the dashboard loads nothing from other hosts
