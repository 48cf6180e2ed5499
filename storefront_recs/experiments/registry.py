"""The experiments each worker knows: synced from config once, re-read every few seconds."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import Engine

from ..outages import keep_last_good
from .definitions import Experiment, load_experiments, sync_config


class ExperimentRegistry:
    def __init__(self, engine: Engine, declared: list[dict[str, Any]], refresh_seconds: float) -> None:
        self.engine = engine
        self.declared = declared
        self.refresh_seconds = refresh_seconds
        self._synced = False
        self._loaded_at = float("-inf")
        self._experiments: list[Experiment] = []
        self._lock = threading.Lock()

    def all(self) -> list[Experiment]:
        """Every experiment (running, paused or over), oldest first; at most a few seconds old."""
        if time.monotonic() - self._loaded_at >= self.refresh_seconds:
            self.reload()
        return self._experiments

    def reload(self) -> None:
        """Re-read the experiments. While the database is unavailable the last good list stays
        (none before the first read: answers then get no variant) and is re-read a few seconds later."""
        with self._lock:
            try:
                if not self._synced:
                    with self.engine.begin() as conn:
                        sync_config(conn, self.declared)
                    self._synced = True
                with self.engine.connect() as conn:
                    self._experiments = load_experiments(conn)
            except Exception as exc:
                keep_last_good("the experiment registry", exc, have_copy=True)
            self._loaded_at = time.monotonic()

    def get(self, key: str) -> Experiment | None:
        return next((e for e in self.all() if e.key == key), None)
