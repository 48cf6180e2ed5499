"""Experiment assignments are personal data: erasure deletes them, export returns them."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table

from ..models import ExperimentAssignment
from ..privacy.kinds import register_data_kind, table_kind

register_data_kind(
    table_kind(cast(Table, ExperimentAssignment.__table__), "experiment_assignments"), replace=True
)
