"""The shared-database recipe of docs/integration.md: the shop's own Alembic autogenerate, with
the recipe's include_name, leaves the recs_* tables alone (without it, it would drop them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storefront_recs import Recs
from storefront_recs import db as dbmod


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """The recipe, as a shop puts it in its migrations/env.py."""
    if type_ == "table":
        return not (name or "").startswith("recs_")
    return True


def test_the_shops_autogenerate_leaves_the_recs_tables_alone(tmp_path: Path) -> None:
    class Base(DeclarativeBase):
        pass

    db = SQLAlchemy(model_class=Base)

    class Order(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "shop_orders"
        id: Mapped[int] = mapped_column(primary_key=True)

    app = Flask(__name__, instance_path=str(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'shop.sqlite3'}"
    recs = Recs(db=db)  # the app-factory form of the recipe
    db.init_app(app)
    recs.init_app(app)
    with app.app_context():
        db.create_all()
        dbmod.upgrade(app.extensions["storefront_recs"].engine)
        with db.engine.connect() as conn:
            unfiltered = compare_metadata(MigrationContext.configure(conn), db.metadata)
            filtered = compare_metadata(MigrationContext.configure(conn, opts={"include_name": include_name}),
                                        db.metadata)
    dropped = {diff[1].name for diff in unfiltered if diff[0] == "remove_table"}
    assert "recs_events" in dropped  # what the recipe prevents
    assert filtered == []
