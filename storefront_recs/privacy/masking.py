"""What serving plugs in to stop using erased people's model rows at once, in every worker.

``erased_user_keys_reader(secret, engine)`` returns a function that serving calls per request; it gives
an ``ErasureMask`` (``key in mask``) refreshed from ``recs_erasures`` about once a second (the
other workers), and marked at once by erasures made in this process.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import cast

from sqlalchemy import Connection, Engine, Table, select

from ..models import ModelRun
from .erasure import ErasureMask

REFRESH_SECONDS = 1.0
runs = cast(Table, ModelRun.__table__)


def model_data_since(conn: Connection) -> datetime | None:
    """The start of the second-latest published training run (None if there are fewer than two).

    A worker may still serve the previous bundle for a moment after a new one is published, so
    erasures since the previous run's start are masked: masking a little too much is harmless
    (an erased person's rows, or a returning person's for one more training interval).
    """
    starts = conn.scalars(
        select(runs.c.started_at).where(runs.c.status == "published").order_by(runs.c.started_at.desc()).limit(2)
    ).all()
    return starts[1] if len(starts) == 2 else None


def erased_user_keys_reader(secret: bytes, engine: Engine, every: float = REFRESH_SECONDS) -> Callable[[], ErasureMask]:
    """For ``Recommender(masked_users=...)``: ``visitor.user_key in reader()`` is True for people
    erased since the serving model's data was read (also ``anon:<id>`` model keys)."""
    mask = ErasureMask(secret, live=True)

    def read() -> ErasureMask:
        if mask.due(every):
            with engine.connect() as conn:
                mask.refresh(conn, since=model_data_since(conn))
        return mask

    return read
