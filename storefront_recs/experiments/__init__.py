"""A/B testing: experiments, sticky assignment, attribution and statistics.

- ``definitions``: an experiment and its variants (config or dashboard), synced into the DB;
- ``assignment``: deterministic, stored, login-proof visitor -> variant;
- ``serving``: ``variant_for(state, kind)``, the hook the HTTP endpoints call;
- ``results`` / ``stats``: per-variant counts, intervals, tests and lift;
- ``api``: the ``Recs`` mixin; ``cli``: ``flask recs report``.
"""

from __future__ import annotations

from . import privacy as _privacy  # noqa: F401  (registers the assignments as personal data)
from .api import ExperimentsAPI
from .definitions import Experiment, Variant, parse_experiment
from .results import ExperimentResult, VariantResult, experiment_results
from .serving import ServedVariant, variant_for

__all__ = [
    "Experiment",
    "ExperimentResult",
    "ExperimentsAPI",
    "ServedVariant",
    "Variant",
    "VariantResult",
    "experiment_results",
    "parse_experiment",
    "variant_for",
]
