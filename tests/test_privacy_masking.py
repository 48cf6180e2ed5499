"""What serving reads to stop using erased people's model rows at once, in every worker."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import insert
from test_privacy_helpers import SERVER_ANON, key_of, seed

from storefront_recs import Recs
from storefront_recs.models import ModelRun
from storefront_recs.privacy import erased_user_keys_reader
from storefront_recs.privacy.erasure import erase

T0 = datetime(2026, 5, 1, 3, 0, 0)


def test_the_erasing_worker_masks_at_once_and_other_workers_read_the_table(app: Flask, recs: Recs) -> None:
    state = app.extensions["storefront_recs"]
    shop = seed(app, recs)
    this_worker = erased_user_keys_reader(state.secret, state.checked_engine(), every=3600)  # would not refresh on its own for an hour
    assert shop.alice_key not in this_worker()

    recs.forget_user("alice")

    assert shop.alice_key in this_worker()  # marked by the erasure itself
    assert f"anon:{SERVER_ANON}" in this_worker()  # her unlinked anonymous id's own model row
    other_worker = erased_user_keys_reader(state.secret, state.checked_engine(), every=0)  # created later: only the table tells it
    assert shop.alice_key in other_worker() and f"anon:{SERVER_ANON}" in other_worker()
    assert shop.bob_key not in other_worker() and f"anon:{shop.bob_browser}" not in other_worker()


def test_an_erased_browser_is_masked_by_its_model_key(app: Flask, recs: Recs) -> None:
    shop = seed(app, recs)
    reader = erased_user_keys_reader(app.extensions["storefront_recs"].secret, app.extensions["storefront_recs"].checked_engine(), every=0)
    recs.forget_anonymous(shop.stranger_browser)
    assert f"anon:{shop.stranger_browser}" in reader()
    assert shop.alice_key not in reader()


def test_erasures_older_than_the_models_data_are_not_masked(app: Flask) -> None:
    state = app.extensions["storefront_recs"]
    engine = state.engine
    for name, when in [("early", T0 - timedelta(days=2)), ("between", T0 + timedelta(hours=1)),
                       ("late", T0 + timedelta(days=1, hours=1))]:
        erase(engine, state.secret, [key_of(app, name)], suppress=False, now=when)
    reader = erased_user_keys_reader(state.secret, state.checked_engine(), every=0)
    assert {name for name in ("early", "between", "late") if key_of(app, name) in reader()} == {
        "early", "between", "late"
    }  # no published model yet: mask everything

    with engine.begin() as conn:
        conn.execute(
            insert(ModelRun),
            [
                {"version": "v1", "status": "published", "trigger": "schedule", "started_at": T0},
                {"version": "v2", "status": "published", "trigger": "schedule", "started_at": T0 + timedelta(days=1)},
                {"version": "v3", "status": "rejected", "trigger": "schedule", "started_at": T0 + timedelta(days=2)},
            ],
        )
    # Workers serve v2 (or, for a moment, v1): erasures since v1's data was read are masked.
    assert {name for name in ("early", "between", "late") if key_of(app, name) in reader()} == {"between", "late"}


def test_the_next_training_run_no_longer_sees_an_erased_person(app: Flask, recs: Recs) -> None:
    from storefront_recs.engine.data import MatrixConfig, load_interactions

    shop = seed(app, recs)
    engine = app.extensions["storefront_recs"].engine
    cfg = MatrixConfig.from_config(app.config)
    before = set(load_interactions(engine, cfg).user_ids)
    assert {shop.alice_key, f"anon:{SERVER_ANON}", shop.bob_key} <= before

    recs.forget_user("alice")

    after = set(load_interactions(engine, cfg).user_ids)
    assert shop.alice_key not in after and f"anon:{SERVER_ANON}" not in after
    assert not any(shop.alice_browser in user for user in after)
    assert shop.bob_key in after
