"""What a training run leaves behind when its process dies, and the rule that a run which lost
its lease never publishes.

A run holds the training lease (renewed every third of ``RECS_LEASE_TIMEOUT``) from before its
``recs_model_runs`` row is written until after it is finished. So once the lease has expired,
or is held by a newer run, a row still marked ``running`` belongs to a dead process: it is
marked ``failed``. Staging directories (``.staging-*``) are only written under the lease, so the
next holder removes every one it finds before it stages its own.
"""

from __future__ import annotations

import os
import shutil

from sqlalchemy import Engine, func, select, update

from .. import leases
from ..db import utcnow
from ..models import Lease, ModelRun
from .bundle import STAGING_PREFIX, BundleStore

DEAD_RUN_MESSAGE = "the training process stopped (its lease expired without a heartbeat)"


class LeaseLost(RuntimeError):
    """The run no longer holds the training lease: another run may have started; never publish."""


def fail_dead_runs(engine: Engine, *, holding: bool = False) -> int:
    """Mark the ``running`` rows of dead runs ``failed``; returns how many.

    ``holding``: the caller holds the training lease and has not written its own row yet, so
    every ``running`` row is dead. Otherwise a live lease spares the newest ``running`` row (its
    holder's run) and an expired or missing lease spares none.
    """
    now = utcnow()
    with engine.begin() as conn:
        stmt = update(ModelRun).where(ModelRun.status == "running")
        if not holding:
            lease_expiry = conn.execute(
                select(Lease.expires_at).where(Lease.name == leases.TRAINING_LEASE)).scalar()
            if lease_expiry is not None and lease_expiry >= now:
                newest = conn.execute(select(func.max(ModelRun.id)).where(ModelRun.status == "running")).scalar()
                if newest is None:
                    return 0
                stmt = stmt.where(ModelRun.id < newest)
        return int(conn.execute(stmt.values(status="failed", finished_at=now, message=DEAD_RUN_MESSAGE)).rowcount)


def remove_dead_staging(store: BundleStore) -> list[str]:
    """Remove the staging directories in the model directory (call holding the lease)."""
    if not os.path.isdir(store.model_dir):
        return []
    removed = sorted(name for name in os.listdir(store.model_dir) if name.startswith(STAGING_PREFIX))
    for name in removed:
        shutil.rmtree(os.path.join(store.model_dir, name), ignore_errors=True)
    return removed


def clean_up_after_dead_runs(engine: Engine, store: BundleStore) -> None:
    """What a run does first, holding the lease: fail the dead runs' rows, remove their staging."""
    fail_dead_runs(engine, holding=True)
    remove_dead_staging(store)
