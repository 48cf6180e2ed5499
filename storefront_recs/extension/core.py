"""The core of the ``Recs`` extension: init_app, host hooks and tracking.

Feature areas (training, serving, privacy, ...) add their public methods as mixins over
``RecsCore``; ``extension.Recs`` puts them together.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from flask import Flask, current_app, has_app_context, has_request_context

from ..assembly import EXTENSION_KEY, RecsState
from ..catalog import Catalog
from ..config import apply_defaults, validate
from ..errors import ConfigurationError, ValidationError
from ..tracking.identity import Visitor, checked_id, resolve_visitor, tracking_refused
from ..tracking.ingest import store_events, validate_events


class RecsCore:
    """Set-up, host hooks and event tracking; see ``extension.Recs`` for the full API."""

    def __init__(self, app: Flask | None = None, *, db: Any = None) -> None:
        self.db = db
        self._app: Flask | None = None
        self._user_loader: Callable[[], Any] | None = None
        self._admin_check: Callable[[], bool] | None = None
        self.catalog = Catalog(lambda: self._state().checked_engine())
        if app is not None:
            self._app = app
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        if EXTENSION_KEY in app.extensions:
            raise ConfigurationError(
                "storefront-recs is already initialised on this app; call init_app once per app"
            )
        apply_defaults(app.config)
        validate(app.config)
        if app.config["RECS_DATABASE_URI"] is None and self.db is None:
            path = os.path.join(app.instance_path, "storefront_recs.sqlite3")
            app.config["RECS_DATABASE_URI"] = f"sqlite:///{path}"
        if app.config["RECS_MODEL_DIR"] is None:
            app.config["RECS_MODEL_DIR"] = os.path.join(app.instance_path, "recs_models")
        prefix = app.config["RECS_URL_PREFIX"]
        if not prefix.startswith("/"):
            raise ConfigurationError(f"RECS_URL_PREFIX must start with '/', got {prefix!r}")
        app.extensions[EXTENSION_KEY] = RecsState(self, app)  # type: ignore[arg-type]  # self is a Recs

        from ..cli import recs_cli
        from ..web import mount

        mount(app, prefix)
        if "recs" not in app.cli.commands:
            app.cli.add_command(recs_cli)

    # -- host hooks -----------------------------------------------------------------------------
    def user_loader(self, func: Callable[[], Any]) -> Callable[[], Any]:
        """Register the shop's "who is logged in" function (returns a user id or None)."""
        self._user_loader = func
        return func

    def admin_check(self, func: Callable[[], bool]) -> Callable[[], bool]:
        """Register who may open /recs/admin/ (default: nobody)."""
        self._admin_check = func
        return func

    # -- internals ------------------------------------------------------------------------------
    def _state(self) -> RecsState:
        app = current_app._get_current_object() if has_app_context() else self._app  # type: ignore[attr-defined]
        if app is None:
            raise RuntimeError(
                "storefront-recs needs an app: call it inside an app context, or create Recs(app)"
            )
        state = app.extensions.get(EXTENSION_KEY)
        if state is None:
            raise ConfigurationError("storefront-recs is not initialised on this app: call init_app(app)")
        return state  # type: ignore[no-any-return,unused-ignore]

    @contextmanager
    def _context(self) -> Iterator[RecsState]:
        """The state, with an app context pushed when the caller has none."""
        if has_app_context():
            yield self._state()
            return
        state = self._state()
        with state.app.app_context():
            yield state

    def current_visitor(self, *, may_track: bool | None = None) -> Visitor:
        """The visitor of the current request, as the server knows them."""
        from flask import request

        state = self._state()
        if may_track is None:
            may_track = tracking_refused(request) is None
        user_id = self._user_loader() if self._user_loader and has_request_context() else None
        return resolve_visitor(
            None if user_id is None else str(user_id), state.secret, state.config["RECS_HASH_USER_IDS"], may_track
        )

    # -- public API -----------------------------------------------------------------------------
    def track(
        self,
        type: str,
        *,
        user_id: Any = None,
        anonymous_id: str | None = None,
        item_id: str | None = None,
        items: list[dict[str, Any]] | None = None,
        quantity: int = 1,
        value: float | None = None,
        ts: datetime | float | str | None = None,
        event_id: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> bool:
        """Record an event the shop's server knows first (orders, refunds, ...).

        Pass a stable ``event_id`` (an order id, say) to make retries safe. Returns True when
        stored, False when an event with that id was already stored. Raises
        :class:`ValidationError` for an invalid event.
        """
        if user_id is None and anonymous_id is None:
            raise ValidationError("track() needs a user_id or an anonymous_id")
        raw = {
            "event_id": event_id or str(uuid.uuid4()),
            "type": type,
            "item_id": item_id,
            "items": items,
            "quantity": quantity,
            "value": value,
            "ts": ts.isoformat() if isinstance(ts, datetime) else ts,
            "context": context,
        }
        with self._context() as state:
            valid, rejected = validate_events([{k: v for k, v in raw.items() if v is not None}], state.limits())
            if rejected:
                raise ValidationError(f"invalid event: {rejected[0]['reason']}", {"event": rejected[0]["reason"]})
            visitor = Visitor(
                user_key=None if user_id is None else state.user_key(user_id),
                anonymous_id=None if anonymous_id is None else checked_id(anonymous_id),
            )
            with state.checked_engine().begin() as conn:
                accepted, _ = store_events(conn, valid, visitor, source="server", use_client_ts=True,
                                           suppressions=state.suppressions)
            return accepted == 1
