"""The per-app state ``init_app`` assembles, kept in ``app.extensions["storefront_recs"]``:
the engine, the secret, and the parts handed to the layers below (bundle store, recommender,
experiment registry, suppression list, ingest limits)."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Flask, current_app
from sqlalchemy import Engine

from .. import db as dbmod
from ..errors import ConfigurationError, NotMigratedError
from ..privacy.suppression import Suppressions
from ..tracking.identity import Visitor, hash_user_id
from ..tracking.ingest import Limits

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

    from ..experiments.registry import ExperimentRegistry
    from ..experiments.serving import ServedVariant
    from ..extension import Recs
    from ..serving.model import ServingStore
    from ..serving.recommender import Recommender

EXTENSION_KEY = "storefront_recs"
T = TypeVar("T")
SECRET_FILE = "storefront_recs.secret"


class RecsState:
    """Per-app state, kept in ``app.extensions["storefront_recs"]``."""

    def __init__(self, recs: Recs, app: Flask) -> None:
        self.recs = recs
        self.app = app
        self.config = app.config
        self.secret = _load_secret(app)
        self._engine: Engine | None = None
        self._schema_checked = False
        self._lock = threading.Lock()
        self._components: dict[str, Any] = {}
        self._components_lock = threading.RLock()  # a factory may ask for another component
        self.scheduler: BaseScheduler | None = None  # the embedded scheduler, in the process that runs it

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = self._create_engine()
        return self._engine

    def _create_engine(self) -> Engine:
        if self.recs.db is not None:
            with self.app.app_context():
                return self.recs.db.engine  # type: ignore[no-any-return,unused-ignore]
        return dbmod.make_engine(self.config["RECS_DATABASE_URI"], self.config["RECS_ENGINE_OPTIONS"])

    def checked_engine(self) -> Engine:
        """The engine, after making sure the recs tables are migrated (checked once)."""
        engine = self.engine
        if not self._schema_checked:
            if not dbmod.is_up_to_date(engine):
                raise NotMigratedError(
                    "the storefront-recs tables are missing or out of date: run `flask recs db upgrade`"
                )
            self._schema_checked = True
        return engine

    def component(self, name: str, factory: Callable[[], T]) -> T:
        """A per-app object built once, thread-safely, and kept on this state: in each worker
        process, its bundle store, recommender, experiment registry..."""
        found = self._components.get(name)
        if found is None:
            with self._components_lock:
                found = self._components.get(name)
                if found is None:
                    found = self._components[name] = factory()
        return found

    def user_key(self, user_id: Any) -> str:
        return hash_user_id(self.secret, str(user_id), self.config["RECS_HASH_USER_IDS"])

    def limits(self) -> Limits:
        return Limits.from_config(self.config)

    # -- the parts, assembled here and handed to the layers below (see components.py) ------------
    @property
    def suppressions(self) -> Suppressions:
        return Suppressions(self.secret)

    @property
    def bundle_store(self) -> ServingStore:
        from .components import build_bundle_store

        return self.component("bundle_store", lambda: build_bundle_store(self.config))

    @property
    def recommender(self) -> Recommender:
        from .components import build_recommender

        return self.component("recommender", lambda: build_recommender(self))

    @property
    def experiments(self) -> ExperimentRegistry:
        from .components import build_experiment_registry

        return self.component("experiment_registry", lambda: build_experiment_registry(self))

    def variant_for(self, kind: str, visitor: Visitor | Callable[[], Visitor] | None = None) -> ServedVariant | None:
        """The experiment variant this visitor's answer of ``kind`` gets (default: the request's visitor)."""
        from ..experiments.serving import variant_for

        return variant_for(self.experiments, self.checked_engine(), kind, visitor or self.recs.current_visitor)


def current_state() -> RecsState:
    """The state of the current app (inside an app context)."""
    return state_of(current_app)


def state_of(app: Flask) -> RecsState:
    """The storefront-recs state of ``app``."""
    state = app.extensions.get(EXTENSION_KEY)
    if state is None:
        raise ConfigurationError("storefront-recs is not initialised on this app: call init_app(app)")
    return state  # type: ignore[no-any-return,unused-ignore]


def _load_secret(app: Flask) -> bytes:
    """RECS_SECRET_KEY, else SECRET_KEY, else a key generated once into the instance folder."""
    configured = app.config.get("RECS_SECRET_KEY") or app.config.get("SECRET_KEY")
    if configured:
        return configured.encode() if isinstance(configured, str) else bytes(configured)
    path = os.path.join(app.instance_path, SECRET_FILE)
    if not os.path.exists(path):
        os.makedirs(app.instance_path, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
        app.logger.warning("storefront-recs: no RECS_SECRET_KEY or SECRET_KEY; generated %s", path)
    with open(path) as handle:
        return handle.read().strip().encode()


