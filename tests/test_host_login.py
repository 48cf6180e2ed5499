"""The Flask-Login recipe of docs/integration.md, with Flask-Login itself: the user loader reads
``current_user``; what a visitor did before logging in counts for them once they log in; after
logging out their events are no longer theirs, and the recipe's logout starts a new anonymous id."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import BrowserClient
from flask import Flask, redirect, request
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from sqlalchemy import select

from storefront_recs import Recs
from storefront_recs import db as dbmod
from storefront_recs.models import Event, Identity
from storefront_recs.tracking.identity import read_anonymous_cookie

USERS = {"ada": "secret-a", "bob": "secret-b"}


class User(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


def build_shop(folder: Path, order: str) -> Flask:
    """A shop with Flask-Login, written the way docs/integration.md says."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY="shop-secret", RECS_DATABASE_URI=f"sqlite:///{folder / 'recs.sqlite3'}",
                      RECS_MODEL_DIR=str(folder / "models"))
    app.test_client_class = BrowserClient
    login_manager = LoginManager()
    recs = Recs()
    if order == "login-first":
        login_manager.init_app(app)
    recs.init_app(app)
    if order == "recs-first":
        login_manager.init_app(app)

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        return User(user_id) if user_id in USERS else None

    @recs.user_loader
    def current_user_id() -> str | None:
        return current_user.get_id() if current_user.is_authenticated else None

    @app.post("/login")
    def login() -> Any:
        name = request.form["name"]
        if USERS.get(name) != request.form["password"]:
            return "wrong password", 401
        login_user(User(name))
        return redirect("/")

    @app.post("/logout")
    def logout() -> Any:
        logout_user()
        response = redirect("/")
        # For shared computers: the next visitor starts a new anonymous history.
        response.delete_cookie(app.config["RECS_COOKIE_NAME"], path=request.script_root or "/")
        return response

    dbmod.upgrade(app.extensions["storefront_recs"].engine)
    with app.app_context():
        recs.catalog.upsert([{"id": i, "title": i, "url": f"/p/{i}"} for i in ("tea-1", "tea-2", "tea-3", "mug-1")])
    return app


def track(client: Any, type: str, item_id: str, **extra: Any) -> dict[str, Any]:
    body = {"event_id": str(uuid.uuid4()), "type": type, "item_id": item_id, **extra}
    answer = client.post("/recs/api/v1/events", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json  # type: ignore[no-any-return]


def rows(app: Flask) -> list[Any]:
    with app.extensions["storefront_recs"].engine.connect() as conn:
        return list(conn.execute(select(Event.item_id, Event.user_key, Event.anonymous_id).order_by(Event.id)))


@pytest.mark.parametrize("order", ["login-first", "recs-first"])
def test_anonymous_history_counts_after_login_and_not_after_logout(tmp_path: Path, order: str) -> None:
    app = build_shop(tmp_path, order)
    recs: Recs = app.extensions["storefront_recs"].recs
    ada = app.extensions["storefront_recs"].user_key("ada")  # how the user id is stored
    client = app.test_client()

    track(client, "view", "tea-1")
    track(client, "view", "tea-2")
    with app.app_context():  # the cookie holds the id signed by the server
        anonymous_id = read_anonymous_cookie(client.get_cookie("recs_aid").value)[0]
    assert anonymous_id is not None
    assert [r.user_key for r in rows(app)] == [None, None]

    assert client.post("/login", data={"name": "ada", "password": "wrong"}).status_code == 401
    assert client.post("/login", data={"name": "ada", "password": "secret-a"}).status_code == 302
    track(client, "add_to_cart", "tea-3", user_id="bob")  # a user id in the body is never trusted
    assert [(r.item_id, r.user_key) for r in rows(app)] == [("tea-1", ada), ("tea-2", ada), ("tea-3", ada)]
    with app.extensions["storefront_recs"].engine.connect() as conn:
        assert conn.scalar(select(Identity.user_key).where(Identity.anonymous_id == anonymous_id)) == ada
    with app.app_context():
        viewed = [r.item_id for r in recs.recently_viewed(user_id="ada", n=5)]
    assert set(viewed) >= {"tea-1", "tea-2"}

    assert client.post("/logout").status_code == 302
    assert client.get_cookie("recs_aid") is None  # the recipe's logout dropped it
    track(client, "view", "mug-1")
    after = rows(app)[-1]
    assert after.user_key is None and after.anonymous_id not in (None, anonymous_id)
    with app.app_context():
        assert "mug-1" not in [r.item_id for r in recs.recently_viewed(user_id="ada", n=5)]
