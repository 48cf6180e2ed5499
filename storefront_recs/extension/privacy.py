"""``recs.forget_user()``, ``recs.export_user()``, ``recs.purge_expired_events()``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..assembly import RecsState
from ..db import utcnow
from ..privacy import erasure
from ..privacy import export as exporting
from ..privacy.keys import user_fingerprint
from ..privacy.suppression import Suppressions
from ..retention import PurgeReport, purge_expired_events, retention_settings
from ..tracking.identity import hash_user_id
from .core import RecsCore


def stored_keys(state: RecsState, user_id: Any) -> list[str]:
    """Every form a user id may be stored in: the current one first, then the other (data kept
    while ``RECS_HASH_USER_IDS`` had the other value is erased and exported too)."""
    current = state.user_key(user_id)
    other = hash_user_id(state.secret, str(user_id), not state.config["RECS_HASH_USER_IDS"])
    return [current] if other == current else [current, other]


def bundle_files_eraser(state: RecsState) -> erasure.ModelFilesEraser:
    """Erases model keys from every bundle in ``RECS_MODEL_DIR`` (the serving one and the
    ``RECS_KEEP_BUNDLES`` retained ones), for the receipt's ``model_bundles``."""
    from ..engine.bundle_erasure import erase_from_bundles

    return lambda keys: erase_from_bundles(state.bundle_store, keys)


def erase_late_erasures(state: RecsState, version: str, since: datetime) -> list[str]:
    """Rewrite a just-published bundle without the people erased since its run started (its
    data may have been read before their erasure); returns the model keys removed."""
    import json
    import os

    from ..engine.bundle_erasure import erase_from_bundle

    mask = erasure.ErasureMask(state.secret, since)
    mask.refresh(state.checked_engine())
    if not len(mask):
        return []
    directory = os.path.join(state.bundle_store.model_dir, version)
    with open(os.path.join(directory, "user_ids.json")) as handle:
        keys = [key for key in json.load(handle) if key in mask]
    if keys:
        erase_from_bundle(directory, keys)
    return keys


class PrivacyAPI(RecsCore):
    """Privacy methods of ``Recs``."""

    def forget_user(self, user_id: Any, *, suppress: bool | None = None) -> erasure.ErasureReceipt:
        """Erase everything stored about a user, at once; returns the receipt.

        Deletes their events, identity links, the events of the anonymous ids linked to them
        and every other registered kind of data, in one transaction. ``suppress`` (default:
        ``RECS_SUPPRESS_ERASED_USERS``) also stops their future events from being stored.
        """
        with self._context() as state:
            if suppress is None:
                suppress = bool(state.config["RECS_SUPPRESS_ERASED_USERS"])
            return erasure.erase(state.checked_engine(), state.secret, stored_keys(state, user_id), suppress=suppress,
                                 model_files=bundle_files_eraser(state))

    def forget_anonymous(self, anonymous_id: str, *, suppress: bool = False) -> erasure.ErasureReceipt:
        """Erase one browser's anonymous history (its anonymous-id cookie value), e.g. when its
        visitor withdraws consent; ``suppress`` stops storing events for that id again."""
        with self._context() as state:
            return erasure.erase_anonymous(state.checked_engine(), state.secret, anonymous_id, suppress=suppress,
                                           model_files=bundle_files_eraser(state))

    def export_user(self, user_id: Any) -> dict[str, Any]:
        """Everything stored about a user, as JSON-ready data."""
        with self._context() as state:
            return exporting.export(state.checked_engine(), state.secret, stored_keys(state, user_id))

    def unsuppress_user(self, user_id: Any) -> int:
        """Let a forgotten user be tracked again (they came back and agreed); returns entries removed."""
        with self._context() as state, state.checked_engine().begin() as conn:
            suppressions = Suppressions(state.secret)
            return sum(
                suppressions.lift(conn, user_fingerprint(state.secret, key)) for key in stored_keys(state, user_id)
            )

    def purge_expired_events(self, *, now: datetime | None = None, dry_run: bool = False) -> PurgeReport:
        """Apply ``RECS_RETENTION_DAYS`` (and per-type overrides); what the scheduler runs."""
        with self._context() as state:
            return purge_expired_events(
                state.checked_engine(), now or utcnow(), dry_run=dry_run, **retention_settings(state.config)
            )
