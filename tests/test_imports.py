"""flask recs import-catalog / import-events on good and bad files."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from flask import Flask
from sqlalchemy import func, select

from storefront_recs import Recs
from storefront_recs.importing import counting_lines
from storefront_recs.models import Event


def run(app: Flask, *args: str):  # type: ignore[no-untyped-def]
    return app.test_cli_runner().invoke(args=["recs", *args])


def event_count(app: Flask) -> int:
    with app.extensions["storefront_recs"].engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Event)).scalar_one())


def test_import_catalog_csv_keeps_extra_columns_and_reports_bad_lines(app: Flask, recs: Recs, tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text(
        "id,title,price,category,in_stock,colour\n"
        "sku-1,Mug,9.5,kitchen,true,blue\n"
        "sku-2,Plate,-3,kitchen,true,white\n"  # line 3: negative price
        ",Nameless,1,kitchen,true,red\n"  # line 4: no id
        "sku-3,Bowl,4,kitchen,no,green\n"
    )
    result = run(app, "import-catalog", str(path))
    assert result.exit_code == 1, result.output
    assert "stored 2" in result.output and "rejected 2" in result.output
    assert "line 3: price" in result.output and "line 4: id" in result.output
    assert recs.catalog.get("sku-1")["attributes"] == {"colour": "blue"}
    assert recs.catalog.get("sku-3")["in_stock"] is False
    assert recs.catalog.get("sku-2") is None


def test_import_catalog_jsonl_is_idempotent(app: Flask, recs: Recs, tmp_path: Path) -> None:
    path = tmp_path / "catalog.jsonl"
    lines = [json.dumps({"id": f"sku-{i}", "title": f"Item {i}", "price": i, "brand": "acme"}) for i in range(5)]
    path.write_text("\n".join(lines[:2] + ["{broken"] + lines[2:]) + "\n")
    first = run(app, "import-catalog", str(path))
    assert "line 3: not valid JSON" in first.output
    second = run(app, "import-catalog", str(path))
    assert "stored 5" in second.output
    assert recs.catalog.count() == 5
    assert recs.catalog.get("sku-4")["attributes"] == {"brand": "acme"}


def test_import_events_is_idempotent_and_keeps_repeated_rows(app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "user_id,item_id,type,timestamp,quantity,value\n"
        "u1,sku-1,view,2024-03-01T10:00:00Z,,\n"
        "u1,sku-1,view,2024-03-01T10:00:00Z,,\n"  # a genuine repeat: kept
        "u1,sku-2,purchase,1709290000,2,19.8\n"
        "u2,sku-1,add_to_cart,2024-03-02 11:00:00,,\n"
    )
    first = run(app, "import-events", str(path))
    assert first.exit_code == 0, first.output
    assert "stored 4" in first.output
    second = run(app, "import-events", str(path))
    assert "stored 0, already present 4" in second.output
    assert event_count(app) == 4
    with app.extensions["storefront_recs"].engine.connect() as conn:
        purchase = conn.execute(select(Event).where(Event.type == "purchase")).one()
    assert (purchase.quantity, purchase.value, purchase.source) == (2, 19.8, "import")
    assert purchase.ts.isoformat() == "2024-03-01T10:46:40"


def test_import_events_reports_bad_lines_and_keeps_good_ones(app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "user_id,item_id,type,timestamp,event_id\n"
        "u1,sku-1,view,2024-03-01T10:00:00Z,evt-00000001\n"
        "u1,,view,2024-03-01T10:00:00Z,\n"  # 3: no item
        "u1,sku-1,teleport,2024-03-01T10:00:00Z,\n"  # 4: bad type
        "u1,sku-1,view,yesterday,\n"  # 5: bad time
        "u1,sku-1,view,2999-01-01T00:00:00Z,\n"  # 6: future
        "u1,sku-1,view,2024-03-01T10:00:00Z,no\n"  # 7: bad event id
        "u1,sku-1,view,2024-03-01T10:00:00Z,,surplus\n"  # 8: too many cells
        "u2,sku-2,view,2024-03-01T10:00:00Z,evt-00000002\n"
    )
    result = run(app, "import-events", str(path))
    assert result.exit_code == 1
    assert "stored 2" in result.output and "rejected 6" in result.output
    for line in ("line 3: item_id", "line 4: unknown type", "line 5: timestamp", "line 6: timestamp is in the future",
                 "line 7: event_id", "line 8: more cells"):
        assert line in result.output
    assert event_count(app) == 2


def test_import_events_refuses_a_file_without_the_required_columns(app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("user,item,kind\nu1,sku-1,view\n")
    result = run(app, "import-events", str(path))
    assert result.exit_code != 0
    assert "lacks required column(s) user_id, item_id, type, timestamp" in result.output
    assert event_count(app) == 0


def test_import_events_in_batches_keeps_the_first_row_of_an_event_id(app: Flask, tmp_path: Path) -> None:
    app.config["RECS_IMPORT_BATCH_SIZE"] = 3  # two batches; each is sorted by event id on its way in
    path = tmp_path / "events.csv"
    path.write_text(
        "user_id,item_id,type,timestamp,quantity,value,event_id\n"
        "u1,sku-1,purchase,2024-03-01T10:00:00Z,1,5,order-00000009\n"
        "u2,sku-2,view,1709287200,,,\n"
        "u1,sku-1,purchase,2024-03-01T10:00:00Z,3,7,order-00000009\n"  # same id, same batch: skipped
        "u3,sku-3,view,1709287200,,,order-00000001\n"
        "u2,sku-2,view,1709287200,,,\n"  # a genuine repeat of line 3 in the next batch: kept
        "u3,sku-4,view,2024-03-01T11:00:00+01:00,,,order-00000009\n"  # same id, next batch: skipped
    )
    first = run(app, "import-events", str(path))
    assert first.exit_code == 0, first.output
    assert "read 6 rows: stored 4, already present 2, rejected 0" in first.output
    second = run(app, "import-events", str(path))
    assert "read 6 rows: stored 0, already present 6, rejected 0" in second.output
    with app.extensions["storefront_recs"].engine.connect() as conn:
        order = conn.execute(select(Event).where(Event.event_id == "order-00000009")).one()
        # Unix seconds and ISO text are stored alike: an equality query finds all four.
        at_ten = conn.execute(select(func.count()).select_from(Event).where(Event.ts == datetime(2024, 3, 1, 10))).scalar()
    assert (order.item_id, order.quantity, order.value) == ("sku-1", 1, 5.0)
    assert at_ten == 4


def test_import_events_reads_columns_by_name_and_short_and_blank_lines(app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "event_id,timestamp,type,item_id,user_id\n"
        "evt-00000001,1709287200,view,sku-1,u1\n"
        "\n"  # blank: skipped, not counted
        "evt-00000002,1709287200,view\n"  # 4: too short, so no item_id nor user_id
        "evt-00000003,1709287200.5,view,sku-2,u2\n"
        "evt-00000004,1709287200000,view,sku-3,u3\n"  # milliseconds
        "evt-00000005,99999999999,view,sku-3,u3\n"  # 7: unix seconds in the year 5138
    )
    result = run(app, "import-events", str(path))
    assert result.exit_code == 1
    assert "read 5 rows: stored 3, already present 0, rejected 2" in result.output
    assert "line 4: user_id is empty" in result.output and "line 7: timestamp is in the future" in result.output
    with app.extensions["storefront_recs"].engine.connect() as conn:
        stored = {item: ts for item, ts in conn.execute(select(Event.item_id, Event.ts))}
    assert stored == {
        "sku-1": datetime(2024, 3, 1, 10),
        "sku-2": datetime(2024, 3, 1, 10, 0, 0, 500_000),
        "sku-3": datetime(2024, 3, 1, 10),
    }


def test_counting_lines_reports_every_character_in_few_calls() -> None:
    lines = [f"u{i},sku-{i},view,1709287200\n" for i in range(2500)]
    reported: list[int] = []
    assert list(counting_lines(lines, reported.append, every=1000)) == lines
    assert sum(reported) == sum(map(len, lines)) and len(reported) == 3


def test_import_events_gives_back_the_sqlite_page_cache_it_enlarged(sqlite_app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("user_id,item_id,type,timestamp\nu1,sku-1,view,1709287200\n")
    assert run(sqlite_app, "import-events", str(path)).exit_code == 0
    engine = sqlite_app.extensions["storefront_recs"].engine
    with engine.connect() as one, engine.connect() as two, engine.connect() as three:  # the pool's connections
        sizes = {conn.exec_driver_sql("PRAGMA cache_size").scalar_one() for conn in (one, two, three)}
    assert sizes == {-65536}
