"""Fault tests: a real PostgreSQL server stopped and started under a running app.

With the database down, what can come from memory is served (similar, trending, bought
together, a visitor's cached for-you), the rest answers 503 JSON with Retry-After, click links
still redirect, the dashboard shows an error page, and /recs/health tells each part's state;
when the server returns, everything recovers without a restart.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_app, new_event_id
from flask import Flask
from pg_server import PgServer, pg_server_or_skip
from sqlalchemy import text
from test_serving import SHOP_CONFIG, seed_shop

from storefront_recs import Recs
from storefront_recs.email.tokens import ClickTokens

CONFIG = {**SHOP_CONFIG, "RECS_EXPERIMENT_REFRESH_SECONDS": 0, "RECS_RETRY_AFTER_SECONDS": 17,
          "RECS_ADMIN_CHECK": lambda: True,
          "RECS_EXPERIMENTS": [{"key": "exp", "variants": [{"name": "a", "percent": 50}, {"name": "b", "percent": 50}]}]}
MEMORY_PATHS = ("similar/tea-1", "trending", "bought-together/tea-1")


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    server = pg_server_or_skip()
    yield server
    server.remove()


@pytest.fixture
def database(pg: PgServer) -> Iterator[str]:
    """A fresh database on the fault server, running when the test starts."""
    name = f"t{new_event_id().replace('-', '')[:12]}"
    admin_url = pg.url.rsplit("/", 1)[0] + "/recs"
    from sqlalchemy import create_engine

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    yield pg.url.rsplit("/", 1)[0] + "/" + name
    with contextlib.suppress(subprocess.CalledProcessError):  # a failed test may leave it stopped
        pg.start()


def trained_app(database: str, tmp_path: Path) -> Flask:
    app = make_app(database, tmp_path, **CONFIG)
    recs: Recs = app.extensions["storefront_recs"].recs
    seed_shop(recs, users=24)
    with app.app_context():
        assert recs.train().published
    return app


def assert_unavailable(response, retry_after: str = "17") -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 503, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.is_json and response.json["error"]
    assert response.headers["Retry-After"] == retry_after


def test_database_outage_serves_from_memory_answers_503_and_recovers(pg: PgServer, database: str,
                                                                     tmp_path: Path) -> None:
    app = trained_app(database, tmp_path)
    state = app.extensions["storefront_recs"]
    client = app.test_client()
    assert client.post("/recs/api/v1/events", json={"event_id": new_event_id(), "type": "view",
                                                    "item_id": "tea-3"}).json["accepted"] == 1
    before = {path: client.get(f"/recs/api/v1/{path}") for path in (*MEMORY_PATHS, "for-you")}
    assert all(r.status_code == 200 and r.json["items"] for r in before.values())
    link = "/recs/c/" + ClickTokens(state.secret).make(state.user_key("u1"), "tea-2", "weekly", 1)
    assert client.get(link).headers["Location"].endswith("/p/tea-2")
    health = client.get("/recs/health")
    assert health.status_code == 200 and health.json["status"] == "ok", health.json
    assert {"database", "model", "scheduler", "plugins"} <= set(health.json["checks"])

    pg.stop()
    for path, answer in before.items():  # from memory: the same answers as before the outage
        during = client.get(f"/recs/api/v1/{path}")
        assert during.status_code == 200, (path, during.get_data(as_text=True)[:500])
        assert [i["id"] for i in during.json["items"]] == [i["id"] for i in answer.json["items"]], path
    assert client.get("/recs/api/v1/trending?n=3").status_code == 200
    # what needs the database: 503 with Retry-After (the snippet keeps the events and retries)
    assert_unavailable(client.get("/recs/api/v1/recently-viewed"))
    assert_unavailable(client.post("/recs/api/v1/events", json={"event_id": new_event_id(), "type": "view",
                                                                "item_id": "tea-4"}))
    assert_unavailable(app.test_client().get("/recs/api/v1/for-you"))  # a visitor with no cached answer
    clicked = client.get(link)
    assert clicked.status_code == 302 and clicked.headers["Location"].endswith("/p/tea-2")
    page = client.get("/recs/admin/", headers={"Accept": "text/html"})
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert "database is unavailable" in page.get_data(as_text=True)
    assert "Traceback" not in page.get_data(as_text=True)
    health = client.get("/recs/health")
    assert health.status_code == 200 and health.json["status"] == "degraded", health.json
    assert health.json["checks"]["database"]["status"] == "down"
    assert health.json["checks"]["model"]["status"] == "ok" and health.json["model_version"]
    assert any("database" in reason for reason in health.json["reasons"])
    with app.app_context():  # the Python API serves from memory too
        assert state.recs.trending(n=4) and state.recs.similar_items("tea-1", n=4)

    pg.start()  # back, without restarting the app
    health = client.get("/recs/health")
    assert health.status_code == 200 and health.json["status"] == "ok", health.json
    for path in (*MEMORY_PATHS, "for-you", "recently-viewed"):
        assert client.get(f"/recs/api/v1/{path}").status_code == 200, path
    assert client.post("/recs/api/v1/events", json={"event_id": new_event_id(), "type": "view",
                                                    "item_id": "tea-4"}).json["accepted"] == 1
    assert client.get("/recs/admin/", headers={"Accept": "text/html"}).status_code == 200
    state.engine.dispose()


def test_health_is_down_with_503_when_nothing_can_serve(pg: PgServer, database: str, tmp_path: Path) -> None:
    app = make_app(database, tmp_path, **CONFIG)  # migrated, no model trained yet
    client = app.test_client()
    body = client.get("/recs/health").json
    assert body["status"] == "degraded" and body["checks"]["model"]["loaded"] is False
    pg.stop()
    down = client.get("/recs/health")
    assert down.status_code == 503 and down.json["status"] == "down"
    assert down.json["checks"]["database"]["status"] == "down"
    pg.start()
    back = client.get("/recs/health")
    assert back.status_code == 200 and back.json["checks"]["database"]["status"] == "ok"
    app.extensions["storefront_recs"].engine.dispose()


def test_health_is_degraded_when_the_live_bundles_files_are_deleted(sqlite_uri: str, tmp_path: Path) -> None:
    app = make_app(sqlite_uri, tmp_path, **SHOP_CONFIG)
    recs: Recs = app.extensions["storefront_recs"].recs
    seed_shop(recs, users=24)
    with app.app_context():
        version = recs.train().version
    client = app.test_client()
    assert client.get("/recs/health").json["status"] == "ok"
    shutil.rmtree(tmp_path / "models" / str(version))
    body = client.get("/recs/health").json
    assert body["status"] == "degraded" and body["checks"]["model"]["status"] == "degraded", body
    assert "gone from disk" in body["checks"]["model"]["reason"]


def test_health_says_down_rather_than_500_before_the_tables_are_migrated(sqlite_uri: str, tmp_path: Path) -> None:
    from minimal_app import create_app

    app = create_app({"TESTING": True, "RECS_DATABASE_URI": sqlite_uri, "RECS_MODEL_DIR": str(tmp_path / "m")})
    response = app.test_client().get("/recs/health")
    assert response.status_code == 503 and response.json["status"] == "down"
    assert "flask recs db upgrade" in response.json["checks"]["database"]["error"]
