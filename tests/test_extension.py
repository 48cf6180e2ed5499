"""The Recs extension: init patterns, config defaults, a shared Flask-SQLAlchemy engine."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import inspect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storefront_recs import ConfigurationError, NotMigratedError, Recs, current_recs
from storefront_recs import db as dbmod
from storefront_recs.config import SETTINGS, reference_markdown


def test_second_init_on_the_same_app_raises_a_clear_error(tmp_path: Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    recs = Recs(app)
    with pytest.raises(ConfigurationError, match="already initialised"):
        recs.init_app(app)
    with pytest.raises(ConfigurationError, match="already initialised"):
        Recs(app)


def test_init_app_pattern_and_defaults(tmp_path: Path) -> None:
    recs = Recs()
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config["RECS_MAX_BATCH_EVENTS"] = 7
    recs.init_app(app)
    assert app.extensions["storefront_recs"].recs is recs
    assert app.config["RECS_MAX_BATCH_EVENTS"] == 7
    assert app.config["RECS_URL_PREFIX"] == "/recs"
    assert app.config["RECS_DATABASE_URI"] == f"sqlite:///{tmp_path / 'storefront_recs.sqlite3'}"
    assert set(SETTINGS) <= set(app.config)
    with app.app_context():
        assert current_recs._get_current_object() is recs  # type: ignore[attr-defined]


def test_config_reference_is_generated_from_the_settings() -> None:
    reference = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    assert reference == reference_markdown(), (
        "docs/configuration.md is out of date: run "
        "`.venv/bin/python -m storefront_recs.config > docs/configuration.md`"
    )


def test_unmigrated_database_gets_a_clear_error(tmp_path: Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    recs = Recs(app)
    with pytest.raises(NotMigratedError, match="flask recs db upgrade"):
        recs.catalog.upsert([{"id": "a"}])
    response = app.test_client().post("/recs/api/v1/events", json={"event_id": "abcdefgh", "type": "view", "item_id": "a"})
    assert response.status_code == 503 and "flask recs db upgrade" in response.json["error"]


def test_url_prefix_is_configurable(tmp_path: Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config["RECS_URL_PREFIX"] = "/shop-recs"
    Recs(app)
    dbmod.upgrade(app.extensions["storefront_recs"].engine)
    response = app.test_client().post("/shop-recs/api/v1/events", json={"event_id": "abcdefgh", "type": "view", "item_id": "a"})
    assert response.json["accepted"] == 1


def test_shared_flask_sqlalchemy_engine_keeps_the_shops_tables_apart(database_uri: str, tmp_path: Path) -> None:
    class Base(DeclarativeBase):
        pass

    db = SQLAlchemy(model_class=Base)

    class Order(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "shop_orders"
        id: Mapped[int] = mapped_column(primary_key=True)

    app = Flask(__name__, instance_path=str(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = database_uri
    db.init_app(app)
    recs = Recs(app, db=db)
    with app.app_context():
        db.create_all()
        engine = app.extensions["storefront_recs"].engine
        assert engine is db.engine
        dbmod.upgrade(engine)
        tables = set(inspect(engine).get_table_names())
        assert "shop_orders" in tables and "recs_events" in tables
        assert not any(name.startswith("recs_") for name in db.metadata.tables)
        recs.catalog.upsert([{"id": "sku-1"}])
        db.session.add(Order(id=1))
        db.session.commit()
        dbmod.downgrade(engine, "base")
        assert db.session.get(Order, 1) is not None
        db.session.remove()
        db.drop_all()


def test_cli_reference_is_generated_from_the_commands() -> None:
    from storefront_recs.cli.reference import reference_markdown as cli_markdown

    reference = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()
    assert reference == cli_markdown() + "\n", (
        "docs/cli.md is out of date: run `.venv/bin/python -m storefront_recs.cli.reference > docs/cli.md`"
    )


@pytest.mark.parametrize(("key", "value", "says"), [
    ("RECS_ALS_FACTORS", "many", "RECS_ALS_FACTORS must be a number"),
    ("RECS_BLEND", [1, 2], "RECS_BLEND must be a mapping"),
    ("RECS_RESPECT_DNT", 1, "RECS_RESPECT_DNT must be true or false"),
    ("RECS_SOURCES", "cooccur", "RECS_SOURCES must be a list"),
    ("RECS_DATABASE_URI", 5, "RECS_DATABASE_URI must be a string"),
])
def test_a_wrong_setting_fails_at_start_up_naming_it(tmp_path: Path, key: str, value: object, says: str) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config[key] = value
    with pytest.raises(ConfigurationError, match=says):
        Recs(app)


def test_settings_from_the_environment_are_read_as_json(tmp_path: Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(RECS_ALS_FACTORS="32", RECS_BLEND='{"als": 1.0}', RECS_RESPECT_DNT="false")
    Recs(app)
    assert app.config["RECS_ALS_FACTORS"] == 32 and app.config["RECS_BLEND"] == {"als": 1.0}
    assert app.config["RECS_RESPECT_DNT"] is False


def test_the_parts_settings_come_from_the_one_definition_of_each_setting() -> None:
    from datetime import timedelta

    from storefront_recs.engine.blend_tuning import BlendSettings
    from storefront_recs.engine.data import MatrixConfig
    from storefront_recs.engine.fitting import ALSParams
    from storefront_recs.engine.train import TrainSettings
    from storefront_recs.tracking.ingest import Limits

    assert ALSParams().factors == SETTINGS["RECS_ALS_FACTORS"].default
    assert BlendSettings().noise_z == SETTINGS["RECS_BLEND_NOISE_Z"].default
    assert MatrixConfig().weights == SETTINGS["RECS_EVENT_WEIGHTS"].default
    assert Limits().max_future == timedelta(seconds=SETTINGS["RECS_MAX_FUTURE_SECONDS"].default)
    config = {"RECS_ALS_FACTORS": 16, "RECS_DEDUP_SECONDS": 5, "RECS_SOURCES": ["cooccur"], "RECS_BLEND": {"als": 2}}
    train = TrainSettings.from_config(config)
    assert train.als.factors == 16 and train.matrix.dedup_seconds == 5.0 and train.sources == ("cooccur",)
    assert train.blend.configured == {"als": 2.0} and train.plugin_options["RECS_ALS_FACTORS"] == 16
    assert train.keep_bundles == SETTINGS["RECS_KEEP_BUNDLES"].default  # not in config: its default
