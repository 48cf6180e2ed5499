"""flask recs import-catalog / import-events on good and bad files."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Flask
from sqlalchemy import func, select

from storefront_recs import Recs
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
