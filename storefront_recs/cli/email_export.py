"""The batch export's engine: blocks for many people as JSON lines, in worker processes.

Workers are forked after the parent has loaded the model and the catalogue, so they start warm
and share the mmapped model files; each takes chunks of people, records their sends and
returns the JSON lines, which the parent writes in the input order.
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterator, Sequence
from typing import Any

from flask import Flask

from ..assembly import state_of

CHUNK = 200
_APP: Flask | None = None
_OPTIONS: dict[str, Any] = {}


def _lines(user_ids: Sequence[str]) -> list[str]:
    assert _APP is not None
    recs = state_of(_APP).recs
    with _APP.app_context():
        return [json.dumps({"user_id": user_id, **block.to_dict()}, ensure_ascii=False)
                for user_id, block in recs.email_blocks(user_ids, **_OPTIONS)]


def _child_init() -> None:
    """A forked worker must not use the parent's database connections."""
    assert _APP is not None
    state_of(_APP).engine.dispose(close=False)


def export_lines(app: Flask, user_ids: Sequence[str], workers: int = 1,
                 **options: Any) -> Iterator[tuple[int, list[str]]]:
    """``(people done in this step, JSON lines)`` in input order; ``options`` as for
    ``recs.email_blocks`` (campaign, n, utm, heading, columns, record)."""
    global _APP, _OPTIONS
    chunks = [list(user_ids[start : start + CHUNK]) for start in range(0, len(user_ids), CHUNK)]
    _APP, _OPTIONS = app, options
    try:
        if workers <= 1 or len(chunks) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
            for chunk in chunks:
                yield len(chunk), _lines(chunk)
            return
        recs = state_of(app).recs
        with app.app_context():  # warm: model bundle, catalogue cache, popularity
            list(recs.email_blocks(chunks[0][:1], **{**options, "record": False}))
        state_of(app).engine.dispose()
        context = multiprocessing.get_context("fork")
        with context.Pool(min(workers, len(chunks)), initializer=_child_init) as pool:
            for chunk, lines in zip(chunks, pool.imap(_lines, chunks), strict=True):
                yield len(chunk), lines
    finally:
        _APP, _OPTIONS = None, {}
