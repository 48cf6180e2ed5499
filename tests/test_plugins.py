"""Plugins found through entry points: listed, loaded, reported when broken, and importers used
by the import commands. The fixture distribution below is installed the way pip installs one
(a ``.dist-info`` folder with ``entry_points.txt`` on ``sys.path``)."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from storefront_recs.models import Event, Item
from storefront_recs.plugins import IMPORTERS, SOURCES, forget_loaded_plugins, plugin, plugin_status

MODULE = textwrap.dedent('''
    import json

    class ItemFeed:
        name = "itemfeed"
        kind = "catalog"

        def __init__(self, options):
            self.options = options

        def read(self, location):
            with open(location) as handle:
                yield from json.load(handle)

    class EventFeed:
        name = "eventfeed"
        kind = "events"

        def __init__(self, options):
            pass

        def read(self, location):
            with open(location) as handle:
                yield from json.load(handle)

    class HalfASource:  # lacks recommend, similar_items, save and load
        name = "half"
        reason = "half"

        def __init__(self, options):
            pass

        def fit(self, user_items):
            pass
''')

ENTRY_POINTS = textwrap.dedent('''
    [storefront_recs.importers]
    itemfeed = recs_fixture_plugins:ItemFeed
    eventfeed = recs_fixture_plugins:EventFeed

    [storefront_recs.sources]
    half = recs_fixture_plugins:HalfASource
    gone = recs_fixture_missing_module:Source
''')


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site"
    dist = site / "recs_fixture_plugins-1.0.dist-info"
    dist.mkdir(parents=True)
    (site / "recs_fixture_plugins.py").write_text(MODULE)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: recs-fixture-plugins\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(site))
    forget_loaded_plugins()
    yield site
    sys.modules.pop("recs_fixture_plugins", None)
    forget_loaded_plugins()


def test_broken_plugins_are_reported_not_fatal(installed: Path, sqlite_app: Flask) -> None:
    status = {(i.group, i.name): i for i in plugin_status()}
    assert status[(IMPORTERS, "itemfeed")].ok and status[(IMPORTERS, "itemfeed")].distribution == "recs-fixture-plugins"
    assert "lacks" in (status[(SOURCES, "half")].error or "") and "recommend" in (status[(SOURCES, "half")].error or "")
    assert "ModuleNotFoundError" in (status[(SOURCES, "gone")].error or "")
    with pytest.raises(LookupError, match="failed to load"):
        plugin(SOURCES, "gone")
    result = sqlite_app.test_cli_runner().invoke(args=["recs", "plugins"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.split()[:2] == ["sources", "gone"] and "FAILED" in line for line in lines)
    assert any(line.split()[:2] == ["importers", "itemfeed"] and line.endswith("available") for line in lines)
    assert sqlite_app.test_client().get("/recs/api/v1/trending").status_code == 200  # the shop still serves


def test_a_broken_source_that_is_enabled_fails_the_listing(installed: Path, sqlite_app: Flask) -> None:
    sqlite_app.config["RECS_SOURCES"] = ["half"]
    result = sqlite_app.test_cli_runner().invoke(args=["recs", "plugins"])
    assert result.exit_code != 0 and "enabled but not loadable: half (sources)" in result.output


def test_import_commands_read_through_an_importer_plugin(installed: Path, app: Flask, tmp_path: Path) -> None:
    items = tmp_path / "items.json"
    items.write_text(json.dumps([{"id": "sku-1", "title": "Teapot", "price": 20},
                                 {"id": "", "title": "no id"}]))
    events = tmp_path / "events.json"
    events.write_text(json.dumps([{"user_id": "u1", "item_id": "sku-1", "type": "view",
                                   "timestamp": "2026-01-01T00:00:00Z"},
                                  {"user_id": "u1", "item_id": "sku-1", "type": "teleport",
                                   "timestamp": "2026-01-01T00:00:00Z"}]))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["recs", "import-catalog", "--importer", "itemfeed", str(items)])
    assert result.exit_code == 1 and "stored 1" in result.output  # the bad record is reported, the good one kept
    result = runner.invoke(args=["recs", "import-events", "--importer", "eventfeed", str(events)])
    assert result.exit_code == 1 and "stored 1" in result.output, result.output
    result = runner.invoke(args=["recs", "import-events", "--importer", "itemfeed", str(items)])
    assert result.exit_code != 0 and "reads catalog, not events" in result.output
    result = runner.invoke(args=["recs", "import-catalog", "--importer", "nosuch", str(items)])
    assert result.exit_code != 0 and "no storefront_recs.importers plugin named 'nosuch'" in result.output
    engine = app.extensions["storefront_recs"].engine
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Item)) == 1
        assert conn.scalar(select(func.count()).select_from(Event)) == 1


def test_import_events_reads_jsonl_files(app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    rows = [{"user_id": "u1", "item_id": "sku-1", "type": "purchase", "timestamp": 1767225600, "quantity": 2,
             "value": 9.5, "event_id": "order-0001"},
            {"user_id": "u2", "item_id": "sku-2", "type": "view", "timestamp": "2026-01-01T00:00:00Z"},
            {"user_id": "u2", "item_id": "sku-2", "type": "view", "timestamp": "2026-01-01T00:00:00Z", "colour": "red"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\nnot json\n")
    result = app.test_cli_runner().invoke(args=["recs", "import-events", str(path)])
    assert result.exit_code == 1
    assert "stored 2" in result.output and "unknown field(s) colour" in result.output
    assert "line 5: not valid JSON" in result.output
    again = app.test_cli_runner().invoke(args=["recs", "import-events", str(path)])
    assert "stored 0" in again.output  # idempotent, like the CSV import
    with app.extensions["storefront_recs"].engine.connect() as conn:
        assert conn.scalar(select(Event.quantity).where(Event.type == "purchase")) == 2


def test_import_of_a_missing_file_says_so(sqlite_app: Flask) -> None:
    result = sqlite_app.test_cli_runner().invoke(args=["recs", "import-catalog", "/no/such/file.csv"])
    assert result.exit_code != 0 and "no file '/no/such/file.csv'" in result.output


def test_health_reports_plugins_and_an_enabled_one_that_failed(installed: Path, sqlite_app: Flask) -> None:
    body = sqlite_app.test_client().get("/recs/health").get_json()
    plugins = body["checks"]["plugins"]
    assert plugins["status"] == "ok" and "importers:itemfeed" in plugins["loaded"]
    assert "ModuleNotFoundError" in plugins["failed"]["sources:gone"]  # installed, broken, not enabled
    sqlite_app.config["RECS_SOURCES"] = ["gone"]
    body = sqlite_app.test_client().get("/recs/health").get_json()
    assert body["checks"]["plugins"]["status"] == "degraded" and body["status"] == "degraded"
    assert "sources:gone" in body["checks"]["plugins"]["reason"]
