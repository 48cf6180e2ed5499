"""Refusing a browser-facing POST: the 403 JSON answer, and a daily count per endpoint and kind
(``recs_refused_requests``), shown on the admin dashboard."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, cast

from flask import Response, current_app, request
from sqlalchemy import Connection, Table, func, select

from ..assembly import current_state
from ..db import utcnow
from ..models import RefusedRequest
from .errors import json_error
from .origin import Refusal, allowed_origins, refusal

table = cast(Table, RefusedRequest.__table__)


def guard(endpoint: str) -> tuple[Response, int] | None:
    """The 403 answer when the origin check refuses this request (and the refusal counted),
    else None."""
    state = current_state()
    allowed = state.component("allowed_origins", lambda: allowed_origins(state.config["RECS_ALLOWED_ORIGINS"]))
    refused = refusal(request, state.config["RECS_PUBLIC_URL"], allowed)
    if refused is None:
        return None
    try:
        with state.checked_engine().begin() as conn:
            count(conn, endpoint, refused)
    except Exception:  # the answer is 403 all the same; a counter must not turn it into a 500
        current_app.logger.exception("storefront-recs: could not count a refused %s request", endpoint)
    current_app.logger.info("storefront-recs: refused %s POST: %s", endpoint, refused.reason)
    return json_error(403, refused.reason, refused=refused.kind)


def count(conn: Connection, endpoint: str, refused: Refusal, day: date | None = None) -> None:
    """Add one to today's count of this endpoint's refusals of this kind."""
    values = {"day": day or utcnow().date(), "endpoint": endpoint, "reason": refused.kind, "count": 1}
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    stmt = insert(table).values(**values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["day", "endpoint", "reason"],
                                            set_={"count": table.c.count + 1}))


def counts(conn: Connection, days: int = 30) -> list[dict[str, Any]]:
    """Refusals in the last ``days`` days, per endpoint and kind, most first."""
    since = utcnow().date() - timedelta(days=days - 1)
    total = func.sum(table.c.count).label("total")
    rows = conn.execute(
        select(table.c.endpoint, table.c.reason, total, func.max(table.c.day).label("last"))
        .where(table.c.day >= since)
        .group_by(table.c.endpoint, table.c.reason)
        .order_by(total.desc(), table.c.endpoint, table.c.reason)
    )
    return [{"endpoint": r.endpoint, "reason": r.reason, "count": int(r.total), "last": r.last} for r in rows]
