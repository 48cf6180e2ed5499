"""The engine without Flask: a whole training run from plain Python in a process where Flask
cannot be imported, reading the shop's database and writing a bundle the shop then serves."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from flask import Flask
from test_engine_train import fill, shop, shop_events, shop_items  # noqa: F401  (shop is a fixture)

from storefront_recs.serving.model import ServingStore

BLOCKED_RUN = textwrap.dedent("""
    import json, sys

    class NoFlask:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("flask", "werkzeug", "flask_sqlalchemy"):
                raise ImportError("Flask is not installed here: " + name)

    sys.meta_path.insert(0, NoFlask())
    from storefront_recs.engine import train_from_url

    report = train_from_url(sys.argv[1], sys.argv[2], {"RECS_TRAIN_SEED": 7})
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("flask", "werkzeug"))
    print(json.dumps({"status": report.status, "version": report.version, "leaked": leaked,
                      "ndcg": report.metrics.get("ndcg@10")}))
""")


def test_a_training_run_works_with_flask_blocked(database_uri: str, tmp_path: Path, shop: Flask) -> None:  # noqa: F811
    fill(shop, shop_items(), shop_events())
    model_dir = tmp_path / "standalone-models"
    done = subprocess.run([sys.executable, "-c", BLOCKED_RUN, database_uri, str(model_dir)],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "published" and result["leaked"] == []
    bundle = ServingStore(str(model_dir)).current()
    assert bundle is not None and bundle.version == result["version"]
    assert bundle.manifest["params"]["als"]["seed"] == 7  # the settings object reached the run
    assert len(bundle.item_ids) == len(shop_items()) and bundle.user_factors.shape[0] > 0
    assert abs(bundle.manifest["metrics"]["ndcg@10"] - result["ndcg"]) < 1e-9  # the run's own evaluation
    assert "popularity_ndcg@10" in bundle.manifest["metrics"]


def test_an_unmigrated_database_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    from storefront_recs.engine import train_from_url
    from storefront_recs.errors import NotMigratedError

    try:
        train_from_url(f"sqlite:///{tmp_path / 'empty.db'}", str(tmp_path / "m"))
    except NotMigratedError as exc:
        assert "db upgrade" in str(exc)
    else:
        raise AssertionError("an empty database must be refused")
