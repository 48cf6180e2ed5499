"""Migrations: an empty database upgrades to exactly the models, and back down."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from storefront_recs import db as dbmod
from storefront_recs.models import metadata


def recs_tables(engine) -> set[str]:  # type: ignore[no-untyped-def]
    return {name for name in inspect(engine).get_table_names() if name.startswith("recs_")}


def test_upgrade_of_an_empty_database_has_no_drift_from_the_models(database_uri: str) -> None:
    engine = dbmod.make_engine(database_uri)
    dbmod.upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_name": lambda name, type_, _: type_ != "table" or (name or "").startswith("recs_")
                and name != dbmod.VERSION_TABLE,
            },
        )
        assert compare_metadata(context, metadata) == []
    assert dbmod.is_up_to_date(engine)
    assert recs_tables(engine) == set(metadata.tables) | {dbmod.VERSION_TABLE}
    engine.dispose()


def test_downgrade_to_base_removes_every_recs_table(database_uri: str) -> None:
    engine = dbmod.make_engine(database_uri)
    dbmod.upgrade(engine)
    dbmod.downgrade(engine, "base")
    assert recs_tables(engine) <= {dbmod.VERSION_TABLE}
    assert dbmod.current_revision(engine) is None
    dbmod.upgrade(engine)
    assert dbmod.is_up_to_date(engine)
    engine.dispose()


def test_cli_db_commands(database_uri: str, tmp_path: Path) -> None:
    from minimal_app import create_app

    app = create_app({"RECS_DATABASE_URI": database_uri, "RECS_MODEL_DIR": str(tmp_path)})
    runner = app.test_cli_runner()
    assert "base (no recs tables)" in runner.invoke(args=["recs", "db", "current"]).output
    upgraded = runner.invoke(args=["recs", "db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    head = dbmod.head_revision(app.extensions["storefront_recs"].engine)
    assert f"({'up to date'})" in runner.invoke(args=["recs", "db", "current"]).output
    assert head in upgraded.output
    down = runner.invoke(args=["recs", "db", "downgrade", "base"])
    assert down.exit_code == 0 and "base" in down.output
    app.extensions["storefront_recs"].engine.dispose()


def test_a_shop_table_in_the_same_database_is_never_touched(database_uri: str, tmp_path: Path) -> None:
    from sqlalchemy import text

    engine = dbmod.make_engine(database_uri)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE shop_orders (id INTEGER PRIMARY KEY, total INTEGER)"))
        conn.execute(text("INSERT INTO shop_orders VALUES (1, 100)"))
    dbmod.upgrade(engine)
    dbmod.downgrade(engine, "base")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT total FROM shop_orders")).scalar_one() == 100
    engine.dispose()
