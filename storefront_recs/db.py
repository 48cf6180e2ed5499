"""Database engine set-up and Alembic migrations for the recs tables."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

VERSION_TABLE = "recs_alembic_version"


def utcnow() -> datetime:
    """Naive UTC now: every stored time is naive UTC, the same on SQLite and PostgreSQL."""
    return datetime.now(UTC).replace(tzinfo=None)


def make_engine(uri: str, options: dict[str, Any] | None = None) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and its folder created."""
    url = make_url(uri)
    options = dict(options or {})
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(url.database)), exist_ok=True)
        connect_args = options.setdefault("connect_args", {})
        connect_args.setdefault("check_same_thread", False)
        connect_args.setdefault("timeout", 30)
    engine = create_engine(url, **options)
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


@contextmanager
def larger_sqlite_cache(conn: Connection, kib: int) -> Iterator[None]:
    """A ``kib`` KiB page cache on this SQLite connection for the block, the pool's size after it
    (PRAGMAs go to the driver: SQLAlchemy's execute would begin a transaction). Elsewhere a no-op."""
    if conn.dialect.name != "sqlite":
        yield
        return
    driver = conn.connection.driver_connection
    previous = int(driver.execute("PRAGMA cache_size").fetchone()[0])  # type: ignore[union-attr]
    driver.execute(f"PRAGMA cache_size=-{int(kib)}")  # type: ignore[union-attr]
    try:
        yield
    finally:
        driver.execute(f"PRAGMA cache_size={previous}")  # type: ignore[union-attr]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # 64 MB of page cache (the default is 2 MB): index inserts of large imports stay in memory.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def alembic_config(engine: Engine) -> AlembicConfig:
    """An Alembic config pointing at the migrations shipped inside the package."""
    cfg = AlembicConfig()
    location = resources.files("storefront_recs.migrations")
    cfg.set_main_option("script_location", str(location))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Apply migrations; the default takes every branch (feature areas may branch off)."""
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def current_heads(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return set(ctx.get_current_heads())


def script_heads(engine: Engine) -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())


def current_revision(engine: Engine) -> str | None:
    """The applied revision(s), comma-separated, or None for an empty database."""
    return ",".join(sorted(current_heads(engine))) or None


def head_revision(engine: Engine) -> str | None:
    """The latest revision(s) the package ships, comma-separated."""
    return ",".join(sorted(script_heads(engine))) or None


def is_up_to_date(engine: Engine) -> bool:
    return current_heads(engine) == script_heads(engine)


def insert_ignoring_conflicts(dialect_name: str, table: Any, index_elements: list[str]) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the two supported databases."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=index_elements)
    if dialect_name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing(index_elements=index_elements)
    raise NotImplementedError(f"storefront-recs supports SQLite and PostgreSQL, not {dialect_name}")
