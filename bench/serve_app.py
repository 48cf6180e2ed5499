"""The app the serving benchmark runs under gunicorn: the minimal shop plus a bare JSON endpoint
(the baseline every ratio in docs/benchmarks.md is taken against)."""

from __future__ import annotations

import sys
from pathlib import Path

from flask import Flask, jsonify

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

from minimal_app import create_app as create_shop  # noqa: E402

BARE_ITEMS = [{"id": f"sku-{i}", "title": f"Item {i}", "url": f"/p/sku-{i}", "image_url": None, "price": 9.5,
               "score": 1.0 / (i + 1), "reason": "bare"} for i in range(8)]


def create_app() -> Flask:
    app = create_shop()

    @app.get("/bare")
    def bare():  # type: ignore[no-untyped-def]
        return jsonify({"items": BARE_ITEMS, "model_version": "bare", "source": "model"})

    return app
