"""A/B testing: experiments, sticky assignment, attribution and statistics.

- ``definitions``: an experiment and its variants (config or dashboard), synced into the DB;
- ``assignment``: deterministic, stored, login-proof visitor -> variant;
- ``serving``: ``variant_for(registry, engine, kind, visitor)``, the hook the HTTP endpoints call;
- ``results`` / ``stats``: per-variant counts, intervals, tests and lift;
- the ``Recs`` mixin is ``extension.experiments``; ``flask recs report`` is in ``cli.experiments``.
"""

from __future__ import annotations

from . import privacy as _privacy  # noqa: F401  (registers the assignments as personal data)
from .definitions import Experiment, Variant, parse_experiment
from .results import ExperimentResult, VariantResult, experiment_results
from .serving import ServedVariant, variant_for

__all__ = [
    "Experiment",
    "ExperimentResult",
    "ServedVariant",
    "Variant",
    "VariantResult",
    "experiment_results",
    "parse_experiment",
    "variant_for",
]
