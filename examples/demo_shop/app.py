"""The demo shop: a small but real Flask shop that mounts storefront-recs as the README says.

Run it with ``bash scripts/demo.sh`` (or ``flask --app examples.demo_shop.app demo seed`` then
``flask --app examples.demo_shop.app run``).
"""

from __future__ import annotations

import csv
import os
import tempfile
from datetime import timedelta
from typing import Any

import click
from flask import Flask, abort, redirect, render_template, request, session, url_for

from storefront_recs import Recs
from storefront_recs.tracking.identity import tracking_refused
from storefront_recs.tracking.importer import import_events

from .catalog import generate_catalog, generate_history

recs = Recs()


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_path=os.path.abspath(os.environ.get("DEMO_INSTANCE", "instance")))
    app.config["SECRET_KEY"] = os.environ.get("DEMO_SECRET_KEY", "demo-shop-not-for-production")
    # Retrain every ten minutes in this process (a production shop runs `flask recs scheduler`).
    app.config["RECS_EMBEDDED_SCHEDULER"] = True
    app.config["RECS_TRAIN_INTERVAL"] = 600
    app.config.update(config or {})
    recs.init_app(app)
    register_routes(app)
    register_commands(app)
    return app


@recs.user_loader
def current_user_id() -> str | None:
    return session.get("user_id")


def track_for_visitor(kind: str, **event: Any) -> None:
    """Record a server-side event for the logged-in user, else for the snippet's anonymous id
    (never when the visitor opted out: DNT/GPC, or no consent where consent is required)."""
    if tracking_refused(request):
        return
    user_id = session.get("user_id")
    anonymous_id = None if user_id else recs.current_visitor(may_track=False).anonymous_id
    if user_id or anonymous_id:
        recs.track(kind, user_id=user_id, anonymous_id=anonymous_id, **event)


def catalog_items() -> list[dict]:
    return [item for item in (recs.catalog.get(i["id"]) for i in generate_catalog()) if item]


def register_routes(app: Flask) -> None:
    @app.get("/")
    def home() -> str:
        items = catalog_items()
        categories = sorted({i["category"] for i in items})
        return render_template("home.html", items=items[:12], categories=categories)

    @app.get("/c/<category>")
    def category(category: str) -> str:
        items = [i for i in catalog_items() if i["category"] == category]
        if not items:
            abort(404)
        return render_template("category.html", items=items, category=category)

    @app.get("/p/<sku>")
    def product(sku: str) -> str:
        item = recs.catalog.get(sku)
        if item is None or not item["active"]:
            abort(404)
        return render_template("product.html", item=item)

    @app.post("/cart/add/<sku>")
    def add_to_cart(sku: str) -> Any:
        if recs.catalog.get(sku) is None:
            abort(404)
        cart = session.setdefault("cart", [])
        cart.append(sku)
        session.modified = True
        track_for_visitor("add_to_cart", item_id=sku)
        return redirect(url_for("cart"))

    @app.get("/cart")
    def cart() -> str:
        items = [recs.catalog.get(sku) for sku in session.get("cart", [])]
        return render_template("cart.html", items=[i for i in items if i])

    @app.post("/checkout")
    def checkout() -> Any:
        skus = session.pop("cart", [])
        if not skus:
            return redirect(url_for("cart"))
        lines = [{"item_id": sku, "quantity": 1, "price": (recs.catalog.get(sku) or {}).get("price")} for sku in skus]
        # The order is recorded on the server, where the shop knows it happened.
        track_for_visitor("purchase", items=lines)
        return render_template("thanks.html", count=len(skus))

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "POST":
            session["user_id"] = request.form.get("user_id", "").strip() or "guest"
            return redirect(request.args.get("next") or url_for("home"))
        return render_template("login.html")

    @app.post("/logout")
    def logout() -> Any:
        session.pop("user_id", None)
        return redirect(url_for("home"))


def register_commands(app: Flask) -> None:
    @app.cli.group("demo")
    def demo() -> None:
        """Demo shop data."""

    @demo.command("seed")
    @click.option("--users", default=120, help="Simulated shoppers.")
    def seed(users: int) -> None:
        """Load the generated catalogue and a simulated history (idempotent)."""
        items = generate_catalog()
        recs.catalog.upsert(items)
        state = app.extensions["storefront_recs"]
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "history.csv")
            with open(path, "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["user_id", "item_id", "type", "timestamp"])
                for row in generate_history(items, n_users=users):
                    writer.writerow([row["user_id"], row["item_id"], row["type"], row["ts"].isoformat()])
            report = import_events(state.checked_engine(), path, user_key=state.user_key, max_future=timedelta(0))
        click.echo(f"catalogue: {len(items)} items; history: {report.summary()}")
