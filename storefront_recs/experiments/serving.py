"""The serving hook: which variant (and which overrides) a visitor's answer of a kind gets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from ..db import utcnow
from ..outages import keep_last_good
from ..tracking.identity import Visitor
from .assignment import assign
from .registry import ExperimentRegistry


@dataclass(frozen=True)
class ServedVariant:
    experiment: str
    variant: str
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        """What answers and events carry: ``experiment-key:variant``."""
        return f"{self.experiment}:{self.variant}"


def variant_for(registry: ExperimentRegistry, engine: Engine, kind: str,
                visitor: Visitor | Callable[[], Visitor]) -> ServedVariant | None:
    """The variant of the first running experiment covering ``kind`` that this visitor is in.

    ``visitor`` may be a function giving it: it is only resolved when an experiment applies, so
    shops without experiments pay one list lookup.
    """
    now = utcnow()
    running = [e for e in registry.all() if e.active(now) and e.applies_to(kind)]
    if not running:
        return None
    if callable(visitor):
        visitor = visitor()
    if not visitor.known:
        return None
    try:
        with engine.begin() as conn:
            for experiment in running:
                name = assign(conn, experiment, visitor)
                found = experiment.variant(name) if name else None
                if found is not None:
                    return ServedVariant(experiment.key, found.name, dict(found.overrides))
    except Exception as exc:  # a database outage: the default answer, outside the experiment
        keep_last_good("experiment assignment", exc, have_copy=True)
    return None
