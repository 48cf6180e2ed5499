"""recs.forget_user(): everything about a person goes at once, with a receipt that adds up."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import make_app
from flask import Flask
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, func, insert, select
from test_privacy_helpers import (
    SERVER_ANON,
    all_rows,
    cookie,
    key_of,
    post,
    rows_mentioning,
    seed,
    set_anonymous_cookie,
)

from storefront_recs import Recs
from storefront_recs.db import utcnow
from storefront_recs.models import Event, Identity
from storefront_recs.privacy import (
    ErasureMask,
    add_erasure_listener,
    data_kinds,
    erased_fingerprints,
    register_data_kind,
    remove_erasure_listener,
    unregister_data_kind,
    user_fingerprint,
)
from storefront_recs.privacy.kinds import table_kind

BUILTIN_KINDS = ("events", "anonymous_events", "detached_events", "identities")


def builtin_counts(receipt: Any) -> dict[str, int]:
    """The receipt's counts of the built-in kinds; every other kind (tables added by other
    features) must have found nothing in these tests."""
    others = {k: v for k, v in receipt["deleted"].items() if k not in BUILTIN_KINDS}
    assert set(others.values()) <= {0}, others
    return {k: v for k, v in receipt["deleted"].items() if k in BUILTIN_KINDS}


def count(app: Flask, *where: Any) -> int:
    with app.extensions["storefront_recs"].engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Event).where(*where)).scalar_one())


def test_forget_user_leaves_no_row_referencing_the_person_and_the_receipt_adds_up(app: Flask, recs: Recs) -> None:
    shop = seed(app, recs)
    alice_anon = [shop.alice_browser, SERVER_ANON]
    assert count(app, Event.user_key == shop.alice_key) == 5
    bob_before = count(app, Event.user_key == shop.bob_key)
    total_before = count(app)

    receipt = recs.forget_user("alice")

    assert builtin_counts(receipt) == {
        "events": 5,  # 2 stamped anonymous views, cart, purchase, server-side view
        "anonymous_events": 2,  # logged-out view, server-side anonymous view
        "detached_events": 1,  # Bob's view on her browser keeps Bob, loses her anonymous id
        "identities": 1,
    }
    assert receipt["suppressed"] is True
    assert receipt["user"] == user_fingerprint(app.extensions["storefront_recs"].secret, shop.alice_key)
    assert receipt["user"] != shop.alice_key and "alice" not in json.dumps(receipt)
    assert rows_mentioning(app, ["alice", shop.alice_key, *alice_anon]) == []
    assert count(app) == total_before - 7
    assert count(app, Event.user_key == shop.bob_key) == bob_before  # nobody else lost anything
    assert count(app, Event.anonymous_id == shop.stranger_browser) == 1
    # Fingerprints only: the erasure receipt and the suppression entries.
    tables = all_rows(app)
    assert [row["counts"] for row in tables["recs_erasures"]] == [receipt["deleted"]]
    assert len(tables["recs_suppressions"]) == 4  # both stored forms of her id, her two anonymous ids


def test_forgetting_an_unknown_user_returns_zero_counts(recs: Recs) -> None:
    receipt = recs.forget_user("nobody", suppress=False)
    assert set(BUILTIN_KINDS) <= set(receipt["deleted"])
    assert set(receipt["deleted"].values()) == {0}
    assert receipt["suppressed"] is False


def test_suppressed_user_is_not_stored_again_on_any_path(app: Flask, recs: Recs, tmp_path: Path) -> None:
    shop = seed(app, recs)
    recs.forget_user("alice")

    # Server-side tracking.
    assert recs.track("purchase", user_id="alice", item_id="sku-1", event_id="order-2001") is False
    # Her old browser, logged out.
    old_browser = app.test_client()
    set_anonymous_cookie(old_browser, shop.alice_browser)
    assert post(old_browser, "view", "sku-1")["accepted"] == 0
    # A new browser: anonymous events are stored until she logs in; then they are hers and go.
    new_browser = app.test_client()
    assert post(new_browser, "view", "sku-8")["accepted"] == 1
    new_anon = cookie(new_browser)
    new_browser.post("/login/alice")
    assert post(new_browser, "view", "sku-8")["accepted"] == 0
    new_browser.post("/logout")
    assert post(new_browser, "view", "sku-8")["accepted"] == 0
    # A CSV import of historical events.
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id,type,timestamp\nalice,sku-1,view,2026-01-01T00:00:00Z\nbob,sku-1,view,2026-01-01T00:00:00Z\n")
    result = app.test_cli_runner().invoke(args=["recs", "import-events", str(path)])
    assert result.exit_code == 0, result.output
    assert "stored 1" in result.output and "skipped 1 of erased users" in result.output

    assert rows_mentioning(app, [shop.alice_key, shop.alice_browser, new_anon]) == []
    assert count(app, Event.user_key == shop.bob_key) == 5  # his 4 and the imported one


def test_without_suppression_the_user_is_tracked_again(app: Flask, recs: Recs) -> None:
    recs.track("view", user_id="alice", item_id="sku-1")
    recs.forget_user("alice", suppress=False)
    assert recs.track("view", user_id="alice", item_id="sku-1") is True


def test_suppression_follows_the_config_default_and_can_be_lifted(database_uri: str, tmp_path: Path) -> None:
    app = make_app(database_uri, tmp_path, RECS_SUPPRESS_ERASED_USERS=False)
    recs: Recs = app.extensions["storefront_recs"].recs
    assert recs.forget_user("alice")["suppressed"] is False
    assert recs.track("view", user_id="alice", item_id="sku-1") is True
    assert recs.forget_user("alice", suppress=True)["suppressed"] is True
    assert recs.track("view", user_id="alice", item_id="sku-1") is False
    assert recs.unsuppress_user("alice") == 2  # both stored forms of her id
    assert recs.track("view", user_id="alice", item_id="sku-1") is True
    app.extensions["storefront_recs"].engine.dispose()


def test_data_stored_under_either_form_of_the_user_id_is_erased(database_uri: str, tmp_path: Path) -> None:
    raw = make_app(database_uri, tmp_path, RECS_HASH_USER_IDS=False)
    raw.extensions["storefront_recs"].recs.track("view", user_id="shopper-4711", item_id="sku-1")
    raw.extensions["storefront_recs"].engine.dispose()
    hashed = make_app(database_uri, tmp_path, RECS_HASH_USER_IDS=True)
    recs: Recs = hashed.extensions["storefront_recs"].recs
    recs.track("view", user_id="shopper-4711", item_id="sku-2")
    assert rows_mentioning(hashed, ["shopper-4711"])  # the shop stored it in the clear once

    assert recs.forget_user("shopper-4711")["deleted"]["events"] == 2
    assert rows_mentioning(hashed, ["shopper-4711", key_of(hashed, "shopper-4711")]) == []
    hashed.extensions["storefront_recs"].engine.dispose()


def test_serving_can_mask_erased_users_in_every_worker(app: Flask, recs: Recs) -> None:
    state = app.extensions["storefront_recs"]
    recs.track("view", user_id="alice", item_id="sku-1")
    model_data_read_at = utcnow() - timedelta(seconds=1)
    told: list[str] = []
    listener = add_erasure_listener(lambda user_key, receipt: told.append(user_key))
    try:
        receipt = recs.forget_user("alice")
    finally:
        remove_erasure_listener(listener)
    assert told == [key_of(app, "alice")]  # this worker: at once

    mask = ErasureMask(state.secret, since=model_data_read_at)  # any other worker: from the table
    mask.refresh(state.engine)
    assert mask.is_erased(key_of(app, "alice")) and not mask.is_erased(key_of(app, "bob"))
    assert key_of(app, "alice") in mask and key_of(app, "bob") not in mask
    marked = ErasureMask(state.secret)
    marked.mark(key_of(app, "bob"))  # what a listener does in the erasing worker
    assert key_of(app, "bob") in marked and len(marked) == 1
    assert erased_fingerprints(state.engine) == {receipt["user"]}
    # A model trained after the erasure never saw her: nothing to mask.
    assert erased_fingerprints(state.engine, since=utcnow() + timedelta(seconds=1)) == set()


@pytest.fixture
def sends_table(app: Flask) -> Any:
    """A table a later feature might add (email sends), registered as a kind of personal data."""
    meta = MetaData()
    table = Table(
        "recs_test_sends",
        meta,
        Column("id", Integer, primary_key=True),
        Column("user_key", String(64)),
        Column("anonymous_id", String(64)),
        Column("sent_at", DateTime),
    )
    engine = app.extensions["storefront_recs"].engine
    meta.create_all(engine)
    register_data_kind(table_kind(table))
    yield table
    unregister_data_kind("test_sends")
    meta.drop_all(engine)


def test_kinds_registered_by_other_modules_are_erased_and_exported(app: Flask, recs: Recs, sends_table: Table) -> None:
    shop = seed(app, recs)
    now = utcnow()
    with app.extensions["storefront_recs"].engine.begin() as conn:
        conn.execute(
            insert(sends_table),
            [
                {"user_key": shop.alice_key, "anonymous_id": None, "sent_at": now},
                {"user_key": None, "anonymous_id": shop.alice_browser, "sent_at": now},
                {"user_key": shop.bob_key, "anonymous_id": None, "sent_at": now},
            ],
        )
    exported = recs.export_user("alice")["data"]["test_sends"]
    assert {(row["user_key"], row["anonymous_id"]) for row in exported} == {
        (shop.alice_key, None),
        (None, shop.alice_browser),
    }

    assert recs.forget_user("alice")["deleted"]["test_sends"] == 2
    assert [row["user_key"] for row in all_rows(app)["recs_test_sends"]] == [shop.bob_key]


def test_tables_with_personal_columns_are_covered_without_registration() -> None:
    meta = MetaData()
    Table("recs_assignments", meta, Column("user_key", String(64), primary_key=True))
    Table("recs_catalogue_extra", meta, Column("item_id", String(64), primary_key=True))
    names = [kind.name for kind in data_kinds(meta)]
    assert names[:4] == ["events", "anonymous_events", "detached_events", "identities"]
    assert "assignments" in names and "catalogue_extra" not in names


def test_identity_rows_stay_consistent(app: Flask, recs: Recs) -> None:
    shop = seed(app, recs)
    recs.forget_user("bob")
    with app.extensions["storefront_recs"].engine.connect() as conn:
        links = {tuple(row) for row in conn.execute(select(Identity.anonymous_id, Identity.user_key))}
    assert links == {(shop.alice_browser, shop.alice_key)}


def test_cli_forget_user_prints_the_receipt_as_json(app: Flask, recs: Recs) -> None:
    recs.track("view", user_id="alice", item_id="sku-1")
    result = app.test_cli_runner().invoke(args=["recs", "forget-user", "alice", "--no-suppress"])
    assert result.exit_code == 0, result.output
    receipt = json.loads(result.output)
    assert receipt["deleted"]["events"] == 1 and receipt["suppressed"] is False
    assert set(receipt) == {"user", "deleted", "suppressed", "erased_at", "model_bundles"}
    assert receipt["model_bundles"] == {"checked": 0, "rewritten": [], "failed": []}  # no model trained yet


def test_forget_anonymous_erases_one_browsers_history_only(app: Flask, recs: Recs) -> None:
    shop = seed(app, recs)
    receipt = recs.forget_anonymous(shop.stranger_browser)
    assert builtin_counts(receipt) == {"events": 0, "anonymous_events": 1, "detached_events": 0, "identities": 0}
    assert rows_mentioning(app, [shop.stranger_browser]) == []

    # Alice's browser: its anonymous events and link go; her account's events stay, without the id.
    alice_events = count(app, Event.user_key == shop.alice_key)
    receipt = recs.forget_anonymous(shop.alice_browser, suppress=True)
    assert builtin_counts(receipt) == {"events": 0, "anonymous_events": 1, "detached_events": 4, "identities": 1}
    assert rows_mentioning(app, [shop.alice_browser]) == []
    assert count(app, Event.user_key == shop.alice_key) == alice_events
    browser = app.test_client()
    set_anonymous_cookie(browser, shop.alice_browser)
    assert post(browser, "view", "sku-1")["accepted"] == 0  # suppressed
