"""import-events with the events table's lookup indexes deferred (built once at the end)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine, inspect, select

from storefront_recs.models import Event
from storefront_recs.tracking import import_indexes
from storefront_recs.tracking.import_indexes import lookup_indexes, should_defer

ROWS = "".join(f"u{i % 7},sku-{i % 11},view,{1709290000 + i}\n" for i in range(300))
HEADER = "user_id,item_id,type,timestamp\n"


def run(app: Flask, *args: str):  # type: ignore[no-untyped-def]
    return app.test_cli_runner().invoke(args=["recs", *args])


def event_indexes(engine: Engine) -> dict[str, list[str]]:
    with engine.connect() as conn:
        found = inspect(conn).get_indexes(Event.__tablename__)
    return {str(ix["name"]): list(ix["column_names"]) for ix in found}


def expected_indexes() -> dict[str, list[str]]:
    return {str(ix.name): [c.name for c in ix.columns] for ix in lookup_indexes()}


def test_a_deferred_import_stores_the_same_rows_and_rebuilds_every_index(app: Flask, tmp_path: Path) -> None:
    engine = app.extensions["storefront_recs"].engine
    path = tmp_path / "events.csv"
    path.write_text(HEADER + ROWS + "u1,sku-1,teleport,1709290000\n")  # one bad line among good ones
    result = run(app, "import-events", "--indexes", "defer", str(path))
    assert result.exit_code == 1 and "stored 300" in result.output and "rejected 1" in result.output
    assert expected_indexes().items() <= event_indexes(engine).items()
    again = run(app, "import-events", "--indexes", "defer", str(path))
    assert "stored 0, already present 300" in again.output  # the unique key stayed: still idempotent
    with engine.connect() as conn:
        assert len(conn.execute(select(Event.id)).all()) == 300


def test_indexes_an_interrupted_import_left_out_come_back(app: Flask, tmp_path: Path) -> None:
    engine = app.extensions["storefront_recs"].engine
    with engine.begin() as conn:
        for ix in lookup_indexes()[:2]:
            ix.drop(conn)
    assert not expected_indexes().items() <= event_indexes(engine).items()
    upgraded = run(app, "db", "upgrade")
    assert "rebuilt event indexes" in upgraded.output
    assert expected_indexes().items() <= event_indexes(engine).items()
    with engine.begin() as conn:
        lookup_indexes()[0].drop(conn)
    path = tmp_path / "events.csv"
    path.write_text(HEADER + ROWS)
    assert run(app, "import-events", "--indexes", "keep", str(path)).exit_code == 0
    assert expected_indexes().items() <= event_indexes(engine).items()


def test_auto_defers_only_for_a_large_file_into_a_smaller_table(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = app.extensions["storefront_recs"].engine
    path = tmp_path / "events.csv"
    path.write_text(HEADER + ROWS)
    assert not should_defer(engine, str(path), "auto")  # 300 rows: below the threshold
    assert should_defer(engine, str(path), "defer") and not should_defer(engine, str(path), "keep")
    monkeypatch.setattr(import_indexes, "DEFER_MIN_ROWS", 100)
    assert should_defer(engine, str(path), "auto")  # a backfill into an empty table
    assert run(app, "import-events", str(path)).exit_code == 0
    small = tmp_path / "small.csv"
    small.write_text(HEADER + ROWS[: len(ROWS) // 2])
    assert not should_defer(engine, str(small), "auto")  # the table holds more than the file
