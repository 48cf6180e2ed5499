"""The smallest shop that mounts storefront-recs (used by the tests and the README)."""

from flask import Flask, session

from storefront_recs import Recs


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "dev-only-secret"
    app.config.update(config or {})
    recs = Recs(app)

    @recs.user_loader
    def current_user_id() -> str | None:
        return session.get("user_id")

    @app.post("/login/<user_id>")
    def login(user_id: str) -> str:
        session["user_id"] = user_id
        return "ok"

    @app.post("/logout")
    def logout() -> str:
        session.pop("user_id", None)
        return "ok"

    return app
