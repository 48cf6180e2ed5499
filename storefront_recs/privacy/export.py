"""Access: everything stored about a person, as JSON-ready data."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from ..db import utcnow
from .erasure import erasure_records
from .keys import user_fingerprint
from .kinds import data_kinds, resolve_subject
from .suppression import Suppressions


def export(engine: Engine, secret: bytes, user_keys: Sequence[str], now: datetime | None = None) -> dict[str, Any]:
    """The person stored under ``user_keys`` (the first is the current form), every kind of data.

    ``data`` has one list of rows per ``DataKind`` with an exporter; ``suppressed`` and
    ``erasures`` show what the erasure machinery keeps about them (by fingerprint).
    """
    subject_print = user_fingerprint(secret, user_keys[0])
    with engine.connect() as conn:
        subject = resolve_subject(conn, user_keys, subject_print)
        data = {kind.name: kind.export(conn, subject) for kind in data_kinds() if kind.export is not None}
        suppressed = Suppressions(secret).is_subject_suppressed(conn, subject_print)
        records = erasure_records(conn, subject_print)
    return {
        "user": subject_print,
        "user_key": user_keys[0],
        "exported_at": (now or utcnow()).isoformat(),
        "anonymous_ids": sorted(subject.anonymous_ids),
        "suppressed": suppressed,
        "erasures": records,
        "data": data,
    }
