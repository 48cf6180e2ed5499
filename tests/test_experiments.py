"""Experiments: sticky deterministic assignment, login, variants in answers, attribution, report."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import make_app, new_event_id
from flask import Flask
from sqlalchemy import select, update

from storefront_recs import Recs
from storefront_recs.db import utcnow
from storefront_recs.errors import ConfigurationError
from storefront_recs.experiments import parse_experiment
from storefront_recs.experiments.assignment import choose_variant
from storefront_recs.models import ExperimentAssignment

SPLIT = {"key": "split", "name": "Blend test", "variants": [
    {"name": "control", "percent": 50},
    {"name": "popular", "percent": 30, "overrides": {"RECS_BLEND": {"popularity": 1.0}}},
    {"name": "holdout", "percent": 20, "overrides": {"holdout": "popular"}},
]}
HALVES = {"key": "halves", "variants": [{"name": "A", "percent": 50}, {"name": "B", "percent": 50}]}


def only(variant_overrides: dict, key: str = "only") -> dict:
    """An experiment that sends all its traffic to one variant with these overrides."""
    return {"key": key, "variants": [{"name": "treated", "percent": 100, "overrides": variant_overrides},
                                     {"name": "other", "percent": 0}]}


def recs_of(app: Flask) -> Recs:
    return app.extensions["storefront_recs"].recs  # type: ignore[no-any-return]


def test_assignment_is_deterministic_and_splits_traffic_within_tolerance() -> None:
    experiment = parse_experiment(SPLIT)
    counts = Counter(choose_variant(experiment, f"a:visitor-{i}") for i in range(20_000))
    # 20,000 visitors: the standard error of a share is at most 0.35 points; allow 1.5 points.
    assert counts["control"] / 20_000 == pytest.approx(0.50, abs=0.015)
    assert counts["popular"] / 20_000 == pytest.approx(0.30, abs=0.015)
    assert counts["holdout"] / 20_000 == pytest.approx(0.20, abs=0.015)
    assert None not in counts
    assert [choose_variant(experiment, f"a:visitor-{i}") for i in range(50)] == \
           [choose_variant(experiment, f"a:visitor-{i}") for i in range(50)]
    # Another experiment key shuffles visitors independently of this one.
    other = parse_experiment({**SPLIT, "key": "other"})
    same = sum(choose_variant(experiment, f"a:v{i}") == choose_variant(other, f"a:v{i}") for i in range(5000))
    assert same / 5000 == pytest.approx(0.5**2 + 0.3**2 + 0.2**2, abs=0.03)
    # Percents adding up to 90: a tenth of the traffic stays out of the experiment.
    partial = parse_experiment({**HALVES, "variants": [{"name": "A", "percent": 45}, {"name": "B", "percent": 45}]})
    outside = sum(choose_variant(partial, f"a:visitor-{i}") is None for i in range(20_000))
    assert outside / 20_000 == pytest.approx(0.10, abs=0.01)


def test_declarations_are_checked() -> None:
    for bad in (
        {"key": "x", "variants": [{"name": "A", "percent": 100}]},
        {"key": "x", "variants": [{"name": "A", "percent": 60}, {"name": "B", "percent": 60}]},
        {"key": "x", "variants": [{"name": "A", "percent": 50}, {"name": "A", "percent": 50}]},
        {"key": "x", "variants": [{"name": "A", "percent": 50, "overrides": {"RECS_DATABASE_URI": "x"}},
                                  {"name": "B", "percent": 50}]},
        {"key": "x", "variants": [{"name": "A", "percent": 50, "overrides": {"holdout": "maybe"}},
                                  {"name": "B", "percent": 50}]},
        {**HALVES, "key": "Bad Key"},
        {**HALVES, "start": "2026-02-01", "end": "2026-01-01"},
        {**HALVES, "widgets": ["sidebar"]},
    ):
        with pytest.raises(ConfigurationError):
            parse_experiment(bad)


def test_stored_assignment_is_sticky_even_when_the_split_changes(tmp_path: Path, database_uri: str) -> None:
    app = make_app(database_uri, tmp_path, RECS_EXPERIMENTS=[HALVES])
    recs = recs_of(app)
    first = {f"anon-visitor-{i:04d}": recs.assign_variant("halves", anonymous_id=f"anon-visitor-{i:04d}")
             for i in range(40)}
    assert set(first.values()) == {"A", "B"}
    app.extensions["storefront_recs"].engine.dispose()
    # The shop moves all new traffic to B: visitors already assigned keep their variant.
    moved = make_app(database_uri, tmp_path,
                     RECS_EXPERIMENTS=[{**HALVES, "variants": [{"name": "A", "percent": 0}, {"name": "B", "percent": 100}]}])
    again = {anon: recs_of(moved).assign_variant("halves", anonymous_id=anon) for anon in first}
    assert again == first
    assert recs_of(moved).assign_variant("halves", anonymous_id="a-brand-new-visitor") == "B"
    moved.extensions["storefront_recs"].engine.dispose()


def test_the_variant_survives_login_and_follows_the_user_to_another_device(app: Flask) -> None:
    app.config["RECS_EXPERIMENTS"] = [HALVES]
    client = app.test_client()
    answer = client.get("/recs/api/v1/trending?n=3").json
    variant = answer["variant"].split(":")[1]
    assert answer["variant"] in ("halves:A", "halves:B")
    assert client.get("/recs/api/v1/trending?n=3").json["variant"] == answer["variant"]  # sticky
    # A user whose own hash would land in the other variant: login must not move them.
    state = app.extensions["storefront_recs"]
    experiment = recs_of(app).experiment("halves")
    user = next(f"user-{i}" for i in range(100)
                if choose_variant(experiment, f"u:{state.user_key(f'user-{i}')}") != variant)
    client.post(f"/login/{user}")
    assert client.get("/recs/api/v1/for-you?n=3").json["variant"] == answer["variant"]
    with state.engine.connect() as conn:
        rows = conn.execute(select(ExperimentAssignment)).all()
    assert len(rows) == 1 and rows[0].user_key == state.user_key(user) and rows[0].variant == variant
    # Another browser, logged in as the same user, gets the user's variant too.
    other = app.test_client()
    other.get("/recs/api/v1/trending")  # anonymous first: its own assignment
    other.post(f"/login/{user}")
    assert other.get("/recs/api/v1/trending").json["variant"] == answer["variant"]
    assert recs_of(app).assign_variant("halves", user_id=user) == variant


def test_holdout_variants_and_pausing(app: Flask) -> None:
    recs = recs_of(app)
    recs.catalog.upsert([{"id": f"sku-{i}", "title": f"Item {i}", "price": 5.0 + i} for i in range(6)])
    recs.track("view", user_id="someone", item_id="sku-2")
    app.config["RECS_EXPERIMENTS"] = [only({"holdout": "none"}, "nothing"),
                                      only({"holdout": "popular"}, "popular")]
    client = app.test_client()
    nothing = client.get("/recs/api/v1/for-you?n=4")
    assert nothing.json == {"items": [], "model_version": None, "source": "fallback", "variant": "nothing:treated"}
    assert nothing.headers["Cache-Control"] == "private, no-store"
    similar = client.get("/recs/api/v1/similar/sku-1?n=4").json
    assert similar["items"] == [] and similar["variant"] == "nothing:treated"
    recs.pause_experiment("nothing")
    popular = client.get("/recs/api/v1/for-you?n=4").json
    assert popular["variant"] == "popular:treated"
    assert popular["items"][0]["id"] == "sku-2" and popular["source"] == "fallback"
    recs.pause_experiment("popular")
    plain = client.get("/recs/api/v1/trending?n=4")
    assert plain.json["variant"] is None and len(plain.json["items"]) == 4
    assert "private" not in plain.headers.get("Cache-Control", "")
    recs.resume_experiment("nothing")
    assert client.get("/recs/api/v1/bought-together/sku-1").json["variant"] == "nothing:treated"


def test_an_experiment_only_shapes_its_widgets_and_its_dates(app: Flask) -> None:
    now = utcnow()
    app.config["RECS_EXPERIMENTS"] = [
        {**only({"holdout": "none"}, "later"), "start": (now + timedelta(days=1)).isoformat()},
        {**only({"holdout": "none"}, "over"), "end": (now - timedelta(days=1)).isoformat()},
        {**only({"holdout": "none"}, "sidebar"), "widgets": ["similar"]},
    ]
    client = app.test_client()
    assert client.get("/recs/api/v1/trending").json["variant"] is None
    assert client.get("/recs/api/v1/similar/x").json["variant"] == "sidebar:treated"
    assert [e.key for e in recs_of(app).experiments()] == ["later", "over", "sidebar"]


def test_a_visitor_nobody_may_track_is_in_no_experiment(app: Flask) -> None:
    app.config["RECS_EXPERIMENTS"] = [HALVES]
    answer = app.test_client().get("/recs/api/v1/trending", headers={"DNT": "1"})
    assert answer.json["variant"] is None
    with app.extensions["storefront_recs"].engine.connect() as conn:
        assert conn.execute(select(ExperimentAssignment)).all() == []


def _users_in(app: Flask, variant: str, count: int) -> list[str]:
    state = app.extensions["storefront_recs"]
    experiment = recs_of(app).experiment("halves")
    users = [f"shopper-{i}" for i in range(200)
             if choose_variant(experiment, f"u:{state.user_key(f'shopper-{i}')}") == variant]
    return users[:count]


def test_a_purchase_after_a_click_is_credited_to_the_clicked_variant(app: Flask) -> None:
    app.config.update(RECS_EXPERIMENTS=[HALVES], RECS_ATTRIBUTION_WINDOW=3600, RECS_EXPERIMENT_MIN_VISITORS=3)
    recs = recs_of(app)
    u, w = _users_in(app, "A", 2)
    v, x = _users_in(app, "B", 2)
    for user in (u, w, v, x):
        recs.assign_variant("halves", user_id=user)
    t0 = utcnow() - timedelta(hours=20)
    with app.extensions["storefront_recs"].engine.begin() as conn:
        conn.execute(update(ExperimentAssignment).values(assigned_at=t0 - timedelta(hours=1)))

    def track(kind: str, user: str, minutes: float, variant: str | None = None, **fields: object) -> None:
        context = {"variant": f"halves:{variant}", "widget": "for-you"} if variant else None
        recs.track(kind, user_id=user, ts=t0 + timedelta(minutes=minutes), context=context,
                   event_id=new_event_id(), **fields)  # type: ignore[arg-type]

    # u (A): sees and clicks an A recommendation, adds it to the cart, buys it 10 minutes later.
    track("impression", u, 0, "A", item_id="sku-1")
    track("click", u, 1, "A", item_id="sku-1")
    track("add_to_cart", u, 2, item_id="sku-1")
    track("purchase", u, 10, item_id="sku-1", value=30.0)
    # w (A): buys without clicking any recommendation: earned by A, credited to nobody.
    track("purchase", w, 5, item_id="sku-2", value=10.0)
    # v (B): clicks, but buys two hours later, outside the one-hour window.
    track("impression", v, 0, "B", item_id="sku-3")
    track("click", v, 1, "B", item_id="sku-3")
    track("purchase", v, 121, item_id="sku-3", value=20.0)
    # x (B): an A click (a shared device), then a B click; the last click wins. Two order lines.
    track("impression", x, 0, "A", item_id="sku-4")
    track("click", x, 0, "A", item_id="sku-4")
    track("impression", x, 4, "B", item_id="sku-5")
    track("impression", x, 4, "B", item_id="sku-6")
    track("click", x, 5, "B", item_id="sku-5")
    track("purchase", x, 10, items=[{"item_id": "sku-4", "quantity": 2, "price": 15.0},
                                    {"item_id": "sku-5", "quantity": 1, "price": 20.0}])
    # Somebody outside the experiment buys after a tagged click: no visitor of either variant.
    track("click", "stranger", 0, "A", item_id="sku-1")
    track("purchase", "stranger", 1, item_id="sku-1", value=99.0)

    result = recs.experiment_results("halves")
    a, b = result.variant("A"), result.variant("B")
    assert (a.visitors, a.impressions, a.clicks) == (2, 2, 3)  # clicks: u, x's first, the stranger
    assert (b.visitors, b.impressions, b.clicks) == (2, 3, 2)
    # Credited (last click within an hour): A gets u's cart and order (30) and the stranger's (99).
    assert (a.credited_carts, a.credited_orders, a.credited_revenue) == (1, 2, 129.0)
    # B gets x's order of 2 * 15 + 20 = 50; v's purchase came too late.
    assert (b.credited_carts, b.credited_orders, b.credited_revenue) == (0, 1, 50.0)
    # Earned: every assigned visitor who bought after assignment, whatever they clicked.
    assert (a.converters, a.revenue, sorted(a.revenues)) == (2, 40.0, [10.0, 30.0])
    assert (b.converters, b.revenue, sorted(b.revenues)) == (2, 70.0, [20.0, 50.0])
    assert a.revenue_per_visitor.value == 20.0 and b.revenue_per_visitor.value == 35.0
    assert a.baseline and not b.baseline
    assert b.vs_baseline["revenue_per_visitor"].difference == 15.0  # type: ignore[union-attr]
    assert b.ctr.value == pytest.approx(2 / 3)
    assert a.ctr.value == 1.0  # three clicks, two impressions recorded: capped at the clicks
    assert any("no holdout" in w for w in result.warnings)
    assert any(w.startswith("A: 2 visitors") for w in result.warnings)
    data = result.to_dict()
    assert data["variants"][1]["credited_revenue"] == 50.0


def test_erasure_and_export_include_assignments(app: Flask) -> None:
    app.config["RECS_EXPERIMENTS"] = [HALVES]
    recs = recs_of(app)
    variant = recs.assign_variant("halves", user_id="leaving")
    exported = recs.export_user("leaving")
    assert [r["variant"] for r in exported["data"]["experiment_assignments"]] == [variant]
    receipt = recs.forget_user("leaving")
    assert receipt["deleted"]["experiment_assignments"] == 1
    with app.extensions["storefront_recs"].engine.connect() as conn:
        assert conn.execute(select(ExperimentAssignment)).all() == []


def test_report_command_prints_the_results(app: Flask) -> None:
    app.config.update(RECS_EXPERIMENTS=[SPLIT], RECS_EXPERIMENT_MIN_VISITORS=5)
    recs = recs_of(app)
    for i in range(30):
        recs.assign_variant("split", anonymous_id=f"report-visitor-{i:03d}")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["recs", "report"])
    assert result.exit_code == 0, result.output
    assert "Experiment split (Blend test) - running" in result.output
    assert "holdout (holdout: popular) [baseline]" in result.output
    counts = Counter(recs.assign_variant("split", anonymous_id=f"report-visitor-{i:03d}") for i in range(30))
    control_line = next(line for line in result.output.splitlines() if line.strip().startswith("control"))
    assert control_line.split()[1] == str(counts["control"])
    as_json = runner.invoke(args=["recs", "report", "split", "--json"])
    assert '"key": "split"' in as_json.output
    assert runner.invoke(args=["recs", "report", "nope"]).exit_code != 0


def test_a_broken_split_is_flagged(app: Flask) -> None:
    app.config.update(RECS_EXPERIMENTS=[HALVES], RECS_EXPERIMENT_MIN_VISITORS=10)
    recs = recs_of(app)
    experiment = recs.experiment("halves")
    rows = [{"experiment_id": experiment.id, "variant": "A" if i < 90 else "B", "anonymous_id": f"anon-{i:05d}",
             "assigned_at": utcnow()} for i in range(120)]
    with app.extensions["storefront_recs"].engine.begin() as conn:
        conn.execute(ExperimentAssignment.__table__.insert(), rows)
    # 90 against 30 where 60/60 was expected: chi^2 = 2 * 30^2 / 60 = 30, p = 4.3e-8.
    assert any(w.startswith("sample ratio mismatch") for w in recs.experiment_results("halves").warnings)
