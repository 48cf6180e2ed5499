"""Database outages: telling them from other errors, and keeping the last good copy meanwhile.

While the database is unreachable, serving answers what it can from process memory (the model
bundle, the catalogue and popularity caches, the experiment list, cached answers) and everything
else answers 503 with ``Retry-After``. The in-memory copies use :func:`keep_last_good`: a refresh
that fails because of an outage keeps the previous copy and is tried again at the next refresh.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

log = logging.getLogger(__name__)
LOG_EVERY_SECONDS = 60.0


def database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the database cannot be reached (down, restarting, refusing
    connections, connection lost, pool exhausted), not that a statement was wrong."""
    if isinstance(exc, PoolTimeoutError):
        return True
    return isinstance(exc, DBAPIError) and (
        bool(exc.connection_invalidated) or isinstance(exc, (OperationalError, InterfaceError))
    )


class OutageLog:
    """Logs an outage once per ``LOG_EVERY_SECONDS`` per place, not once per request."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def warn(self, where: str, exc: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(where, float("-inf")) < LOG_EVERY_SECONDS:
                return
            self._last[where] = now
        log.warning("storefront-recs: database unavailable in %s, serving the last good copy: %s",
                    where, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


outage_log = OutageLog()


def keep_last_good(where: str, exc: BaseException, have_copy: bool) -> None:
    """Call from an ``except`` block of a cache refresh: returns (keep the copy) when the error is
    an outage and a copy exists, else re-raises ``exc``."""
    if have_copy and database_unavailable(exc):
        outage_log.warn(where, exc)
        return
    raise exc
