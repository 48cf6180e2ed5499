"""The smallest shop that mounts storefront-recs (used by the tests and the README)."""

import os

from flask import Flask, session

from storefront_recs import Recs


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "dev-only-secret"
    # RECS_* environment variables (e.g. RECS_DATABASE_URI) configure the extension.
    app.config.update({k: v for k, v in os.environ.items() if k.startswith("RECS_")})
    app.config.update(config or {})
    recs = Recs(app)

    @recs.user_loader
    def current_user_id() -> str | None:
        return session.get("user_id")

    @app.post("/login/<user_id>")
    def login(user_id: str) -> str:
        session["user_id"] = user_id
        return "ok"

    @app.get("/")
    def home() -> str:
        return "minimal shop"

    @app.post("/logout")
    def logout() -> str:
        session.pop("user_id", None)
        return "ok"

    return app
