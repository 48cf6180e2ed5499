"""``Recs`` methods for experiments and the admin check."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import current_app, has_request_context
from sqlalchemy import Table, update

from ..db import utcnow
from ..errors import ConfigurationError
from ..experiments.assignment import assign
from ..experiments.definitions import Experiment, parse_experiment, to_row
from ..experiments.results import ExperimentResult, experiment_results
from ..models import Experiment as ExperimentRow
from ..tracking.identity import Visitor
from ..tracking.revenue import RevenuePolicy
from .core import RecsCore

F = TypeVar("F", bound=Callable[..., Any])


def resolve_callable(value: Any) -> Callable[[], Any] | None:
    """A callable, or a 'module:function' path to one."""
    if value is None or callable(value):
        return value
    module, _, name = str(value).partition(":")
    return cast(Callable[[], Any], getattr(importlib.import_module(module), name))


class ExperimentsAPI(RecsCore):
    """A/B tests: declare, assign, pause, measure; and who may open the admin dashboard."""

    def experiments(self) -> list[Experiment]:
        """Every experiment (config-declared ones are synced in on first use), oldest first."""
        with self._context() as state:
            return list(state.experiments.all())

    def experiment(self, key: str) -> Experiment:
        with self._context() as state:
            found = state.experiments.get(key)
            if found is None:
                raise KeyError(f"no experiment {key!r}")
            return found

    def create_experiment(self, declaration: dict[str, Any]) -> Experiment:
        """Create an experiment (as the dashboard does); raises ConfigurationError if invalid."""
        experiment = parse_experiment(declaration, source="dashboard")
        with self._context() as state:
            reg = state.experiments
            if reg.get(experiment.key) is not None:
                raise ConfigurationError(f"an experiment {experiment.key!r} exists already")
            now = utcnow()
            with state.checked_engine().begin() as conn:
                conn.execute(cast(Table, ExperimentRow.__table__).insert().values(
                    **to_row(experiment), status="running", created_at=now, updated_at=now))
            reg.reload()
            return self.experiment(experiment.key)

    def set_experiment_status(self, key: str, status: str) -> Experiment:
        """``running`` or ``paused``; a paused experiment serves everyone the default."""
        if status not in ("running", "paused"):
            raise ValueError("status is 'running' or 'paused'")
        with self._context() as state:
            table = cast(Table, ExperimentRow.__table__)
            with state.checked_engine().begin() as conn:
                changed = conn.execute(update(table).where(table.c.key == key)
                                       .values(status=status, updated_at=utcnow())).rowcount
            if not changed:
                raise KeyError(f"no experiment {key!r}")
            state.experiments.reload()
            return self.experiment(key)

    def pause_experiment(self, key: str) -> Experiment:
        return self.set_experiment_status(key, "paused")

    def resume_experiment(self, key: str) -> Experiment:
        return self.set_experiment_status(key, "running")

    def assign_variant(self, key: str, user_id: Any = None, anonymous_id: str | None = None) -> str | None:
        """The visitor's (sticky) variant in experiment ``key``, or None when outside its traffic."""
        with self._context() as state:
            experiment = self.experiment(key)
            visitor = Visitor(None if user_id is None else state.user_key(user_id), anonymous_id)
            with state.checked_engine().begin() as conn:
                return assign(conn, experiment, visitor)

    def experiment_results(self, key: str) -> ExperimentResult:
        """Per-variant CTR, conversion, revenue per visitor, intervals, tests and lift."""
        with self._context() as state:
            config = state.config
            with state.checked_engine().connect() as conn:
                return experiment_results(
                    conn, self.experiment(key), window_seconds=float(config["RECS_ATTRIBUTION_WINDOW"]),
                    min_visitors=int(config["RECS_EXPERIMENT_MIN_VISITORS"]),
                    confidence=float(config["RECS_EXPERIMENT_CONFIDENCE"]),
                    revenue_policy=RevenuePolicy.from_config(config),
                )

    # -- admin access -----------------------------------------------------------------------------
    def is_admin(self) -> bool:
        """Whether the current request may use the admin dashboard (default: nobody)."""
        check = self._admin_check or resolve_callable(current_app.config.get("RECS_ADMIN_CHECK"))
        if check is None or not has_request_context():
            return False
        try:
            return bool(check())
        except Exception:  # a broken check denies, it never opens the door
            current_app.logger.exception("storefront-recs: the admin check raised; access denied")
            return False

    def admin_required(self, view: F) -> F:
        """Protect a view of the shop with the same check as the dashboard (403 otherwise)."""
        from flask import abort

        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not self.is_admin():
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapper)
