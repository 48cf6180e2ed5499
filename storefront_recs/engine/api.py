"""``recs.train()`` and ``recs.evaluate()``: the training pipeline's public face."""

from __future__ import annotations

from ..core import RecsCore


class TrainingAPI(RecsCore):
    """Training methods of ``Recs``."""
