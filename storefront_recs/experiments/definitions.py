"""Experiments as plain values: parsing and checking a declaration, syncing config into the DB."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, select, update

from ..db import insert_ignoring_conflicts, utcnow
from ..errors import ConfigurationError
from ..models import Experiment as ExperimentRow
from ..safe_input import text_problem
from ..serving.recommendation import WIDGET_KINDS
from ..tracking.schemas import parse_timestamp

KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,23}$")
NAME_LENGTH = 200  # recs_experiments.name
HOLDOUTS = ("popular", "none")
# Config keys a variant may override: how recommendations are made (blend, rules, diversity).
OVERRIDABLE = frozenset({
    "RECS_BLEND", "RECS_SIMILAR_BLEND", "RECS_MAX_PER_CATEGORY", "RECS_BOOST_CATEGORIES",
    "RECS_BOOST_ITEMS", "RECS_PINNED", "RECS_SESSION_BOOST", "holdout",
})


@dataclass(frozen=True)
class Variant:
    name: str
    percent: float
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def holdout(self) -> str | None:
        value = self.overrides.get("holdout")
        return str(value) if value else None


@dataclass(frozen=True)
class Experiment:
    """One A/B test; ``status`` is ``running`` or ``paused``."""

    key: str
    name: str
    variants: tuple[Variant, ...]
    widgets: frozenset[str] | None = None  # None: every widget kind
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    status: str = "running"
    source: str = "config"
    id: int | None = None

    def active(self, now: datetime) -> bool:
        return (self.status == "running" and (self.starts_at is None or self.starts_at <= now)
                and (self.ends_at is None or now < self.ends_at))

    def applies_to(self, kind: str) -> bool:
        return self.widgets is None or kind in self.widgets

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)

    def baseline(self) -> Variant:
        """What lift is measured against: the holdout if there is one, else the first variant."""
        return next((v for v in self.variants if v.holdout), self.variants[0])

    def tag(self, variant: str) -> str:
        """The variant as answers and events carry it: ``experiment-key:variant``."""
        return f"{self.key}:{variant}"


def _time(value: Any, what: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=None) if value.tzinfo is None else parse_timestamp(value.isoformat())
    try:
        return parse_timestamp(value)
    except (ValueError, OverflowError) as exc:
        raise ConfigurationError(f"experiment {what}: not a time: {value!r}") from exc


def parse_experiment(data: dict[str, Any], *, source: str = "config") -> Experiment:
    """Check a declaration (from config or the dashboard) and return it as an ``Experiment``."""
    key = str(data.get("key") or "")
    if not KEY_PATTERN.fullmatch(key):
        raise ConfigurationError(f"experiment key {key!r}: 1-40 of a-z 0-9 _ . - (starting with a letter or digit)")
    raw_variants = data.get("variants") or []
    if not isinstance(raw_variants, list) or len(raw_variants) < 2:
        raise ConfigurationError(f"experiment {key}: needs at least two variants")
    variants = [_variant(key, number, raw) for number, raw in enumerate(raw_variants, start=1)]
    if len({v.name for v in variants}) != len(variants):
        raise ConfigurationError(f"experiment {key}: variant names must differ")
    if sum(v.percent for v in variants) > 100.0001:
        raise ConfigurationError(f"experiment {key}: percents add up to more than 100")
    widgets = data.get("widgets")
    if widgets is not None:
        if not isinstance(widgets, list | tuple | set | frozenset) or not all(isinstance(w, str) for w in widgets):
            raise ConfigurationError(f"experiment {key}: widgets must be a list of widget kinds")
        widgets = frozenset(widgets)
        if not widgets <= set(WIDGET_KINDS):
            raise ConfigurationError(f"experiment {key}: widgets are among {', '.join(WIDGET_KINDS)}")
    starts_at, ends_at = _time(data.get("start"), "start"), _time(data.get("end"), "end")
    if starts_at and ends_at and ends_at <= starts_at:
        raise ConfigurationError(f"experiment {key}: ends before it starts")
    name = str(data.get("name") or key)
    if len(name) > NAME_LENGTH or text_problem(name):
        raise ConfigurationError(f"experiment {key}: the name must be text of at most {NAME_LENGTH} characters")
    return Experiment(key, name, tuple(variants), widgets, starts_at, ends_at,
                      str(data.get("status") or "running"), source)


def _variant(key: str, number: int, raw: Any) -> Variant:
    """One variant of a declaration, checked: ``{"name", "percent", "overrides"}``."""
    if not isinstance(raw, dict):
        raise ConfigurationError(f"experiment {key}: variant {number} must be an object "
                                 '{"name": ..., "percent": ..., "overrides": {...}}')
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ConfigurationError(f"experiment {key}: variant name {name!r}: 1-23 of A-Z a-z 0-9 _ . -")
    percent = raw.get("percent", 0)
    if isinstance(percent, str):
        try:
            percent = float(percent) if percent.isascii() else math.nan
        except ValueError:
            percent = math.nan
    if isinstance(percent, bool) or not isinstance(percent, int | float) or not math.isfinite(percent):
        raise ConfigurationError(f"experiment {key}, variant {name}: percent must be a number")
    overrides = raw.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise ConfigurationError(f"experiment {key}, variant {name}: overrides must be an object")
    unknown = set(overrides) - OVERRIDABLE
    if unknown:
        raise ConfigurationError(f"experiment {key}, variant {name}: cannot override {sorted(unknown)}")
    try:
        json.dumps(overrides, allow_nan=False)
    except (TypeError, ValueError):
        raise ConfigurationError(f"experiment {key}, variant {name}: overrides must be JSON with finite "
                                 "numbers") from None
    if text_problem(overrides):
        raise ConfigurationError(f"experiment {key}, variant {name}: overrides: {text_problem(overrides)}")
    if overrides.get("holdout") not in (None, *HOLDOUTS):
        raise ConfigurationError(f"experiment {key}, variant {name}: holdout is 'popular' or 'none'")
    if percent < 0:
        raise ConfigurationError(f"experiment {key}, variant {name}: negative percent")
    return Variant(name, float(percent), dict(overrides))


def to_row(experiment: Experiment) -> dict[str, Any]:
    return {
        "key": experiment.key,
        "name": experiment.name,
        "variants": [{"name": v.name, "percent": v.percent, "overrides": v.overrides} for v in experiment.variants],
        "widgets": sorted(experiment.widgets) if experiment.widgets is not None else None,
        "starts_at": experiment.starts_at,
        "ends_at": experiment.ends_at,
        "source": experiment.source,
    }


def from_row(row: Any) -> Experiment:
    data = {"key": row.key, "name": row.name, "variants": row.variants, "widgets": row.widgets,
            "start": row.starts_at, "end": row.ends_at, "status": row.status}
    return replace(parse_experiment(data, source=row.source), id=row.id)


def sync_config(conn: Connection, declared: list[dict[str, Any]]) -> None:
    """Insert config-declared experiments that are new; update their definition otherwise.

    The status is left alone, so a pause from the dashboard survives a restart.
    """
    table = cast(Table, ExperimentRow.__table__)
    now = utcnow()
    for data in declared:
        experiment = parse_experiment(data)
        values = {**to_row(experiment), "updated_at": now}
        stmt = insert_ignoring_conflicts(conn.dialect.name, table, ["key"])
        inserted = conn.execute(stmt.values(**values, status="running", created_at=now).returning(table.c.id)).first()
        if inserted is None:
            conn.execute(update(table).where(table.c.key == experiment.key, table.c.source == "config")
                         .values(**values))


def load_experiments(conn: Connection) -> list[Experiment]:
    rows = conn.execute(select(ExperimentRow.__table__).order_by(ExperimentRow.id))
    return [from_row(row) for row in rows]
