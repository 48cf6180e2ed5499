"""Shared fixtures: a real shop app on SQLite and, when configured, on a real PostgreSQL.

Set RECS_TEST_POSTGRES_URL (e.g. postgresql+psycopg://postgres:postgres@localhost/recs_test)
to run every ``app`` test on PostgreSQL too; RECS_TEST_REQUIRE_POSTGRES=1 (set by .ci/run)
turns a missing server into a failure instead of a skip.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.datastructures import Headers

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))

from minimal_app import create_app  # noqa: E402

from storefront_recs import Recs  # noqa: E402
from storefront_recs import db as dbmod  # noqa: E402
from storefront_recs.web.origin import origin_of  # noqa: E402

POSTGRES_URL = os.environ.get("RECS_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("RECS_TEST_REQUIRE_POSTGRES") == "1"
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("RECS_TEST_REQUIRE_POSTGRES=1 but RECS_TEST_POSTGRES_URL is not set")
        pytest.skip("PostgreSQL tests need RECS_TEST_POSTGRES_URL")
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A URL whose connections use a fresh, empty schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(postgres_admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'recs.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def sqlite_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'recs.sqlite3'}"


class BrowserClient(FlaskClient):
    """A test client that, like a browser, sends ``Origin`` (its own) on every POST, PUT, PATCH
    and DELETE, as the snippet's fetch and sendBeacon do. A test passes ``headers={"Origin":
    ...}`` to send another, or uses ``FlaskClient`` itself to send none."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        method = str(kwargs.get("method") or (args[0].method if args and hasattr(args[0], "method") else "GET"))
        if method.upper() in ("POST", "PUT", "PATCH", "DELETE") and not (args and hasattr(args[0], "method")):
            headers = Headers(kwargs.pop("headers", None) or {})
            if "Origin" not in headers:
                base = kwargs.get("base_url") or "http://localhost"
                headers["Origin"] = origin_of(base) or "http://localhost"
            kwargs["headers"] = headers
        return super().open(*args, **kwargs)


def make_app(database_uri: str, tmp_path: Path, **config: object) -> Flask:
    app = create_app(
        {
            "TESTING": True,
            "RECS_DATABASE_URI": database_uri,
            "RECS_MODEL_DIR": str(tmp_path / "models"),
            **config,
        }
    )
    app.test_client_class = BrowserClient
    dbmod.upgrade(app.extensions["storefront_recs"].engine)
    return app


@pytest.fixture
def app(database_uri: str, tmp_path: Path) -> Iterator[Flask]:
    """The example shop with storefront-recs, migrated, on each database backend."""
    app = make_app(database_uri, tmp_path)
    yield app
    app.extensions["storefront_recs"].engine.dispose()


@pytest.fixture
def sqlite_app(sqlite_uri: str, tmp_path: Path) -> Iterator[Flask]:
    """The same app on SQLite only, for tests whose subject is not the database."""
    app = make_app(sqlite_uri, tmp_path)
    yield app
    app.extensions["storefront_recs"].engine.dispose()


@pytest.fixture
def recs(app: Flask) -> Recs:
    return app.extensions["storefront_recs"].recs  # type: ignore[no-any-return]


@pytest.fixture
def client(app: Flask):  # type: ignore[no-untyped-def]
    return app.test_client()


def build_trained_shop(folder: Path, seed: Callable[[Recs], object], **config: object) -> Path:
    """Seed and train a shop once (its SQLite database and model bundles in ``folder``), to be
    copied by each test that needs a trained model: training per test would cost seconds."""
    app = make_app(f"sqlite:///{folder / 'recs.sqlite3'}", folder, **config)
    recs: Recs = app.extensions["storefront_recs"].recs
    seed(recs)
    report = recs.train()
    assert report.published, report
    app.extensions["storefront_recs"].engine.dispose()
    return folder


def copy_of_shop(template: Path, tmp_path: Path, **config: object) -> Flask:
    """A private copy of a shop built by :func:`build_trained_shop`, for one test."""
    folder = tmp_path / "shop"
    shutil.copytree(template, folder)
    return make_app(f"sqlite:///{folder / 'recs.sqlite3'}", folder, **config)


def new_event_id() -> str:
    return str(uuid.uuid4())
