"""``/api/v1/...``: event ingestion (recommendation endpoints live in ``web.recommend``)."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from ..assembly import current_state
from ..tracking.identity import link_anonymous, tracking_refused
from ..tracking.ingest import IngestResult, store_events, validate_events
from .errors import json_error
from .refusals import guard

ACCEPTED_MIMETYPES = {"application/json", "text/plain", ""}




def read_limited_body(limit: int) -> bytes | None:
    """The request body, or None when it is over ``limit``; never reads more than limit + 1."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = request.stream.read(limit + 1)
    return None if len(body) > limit else body


def parse_envelope(body: bytes) -> list[Any]:
    """``{"events": [...]}`` or a single event object -> list of raw events."""
    payload = json.loads(body)
    if isinstance(payload, dict) and "events" in payload:
        events = payload["events"]
        if not isinstance(events, list):
            raise ValueError("'events' must be a list")
        return events
    if isinstance(payload, dict):
        return [payload]
    raise ValueError("body must be an event object or {\"events\": [...]}")


def cookie_scope() -> dict[str, Any]:
    """Where our cookies go: the app's own path (``/shop`` when a proxy mounts it there, through
    ``SCRIPT_NAME`` or ``ProxyFix``'s ``X-Forwarded-Prefix``), Secure when the request really came
    over HTTPS (unless ``RECS_COOKIE_SECURE`` says), SameSite=Lax, ``RECS_COOKIE_DOMAIN``."""
    config = current_app.config
    secure = config["RECS_COOKIE_SECURE"]
    return {
        "path": request.script_root or "/",
        "secure": request.is_secure if secure is None else bool(secure),
        "samesite": "Lax",
        "domain": config["RECS_COOKIE_DOMAIN"],
    }


def set_anonymous_cookie(response: Response) -> Response:
    """Send the anonymous-id cookie issued during this request (our endpoints or a shop page
    that wrote the snippet); such a response is for this visitor only."""
    value = g.pop("recs_set_cookie", None)
    if value:
        config = current_app.config
        response.set_cookie(
            config["RECS_COOKIE_NAME"], value, max_age=config["RECS_COOKIE_MAX_AGE"], httponly=True,
            **cookie_scope(),
        )
        if not response.cache_control.no_store:  # no-store already keeps it out of every cache
            response.cache_control.private = True
    return response


def register_api(bp: Blueprint) -> None:
    bp.after_app_request(set_anonymous_cookie)

    @bp.post("/api/v1/events")
    def post_events() -> Any:
        """Store a batch of events for the visitor the server resolves."""
        forbidden = guard("events")
        if forbidden:
            return forbidden
        config = current_app.config
        if request.mimetype not in ACCEPTED_MIMETYPES:
            return json_error(415, "send events as application/json or text/plain")
        limit = config["RECS_MAX_BODY_BYTES"]
        body = read_limited_body(limit)
        if body is None:
            return json_error(413, f"body is over the limit of {limit} bytes")
        try:
            events = parse_envelope(body)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            return json_error(400, f"bad envelope: {exc}")
        max_events = config["RECS_MAX_BATCH_EVENTS"]
        if len(events) > max_events:
            return json_error(413, f"batch of {len(events)} events is over the limit of {max_events}")
        refused = tracking_refused(request)
        if refused:
            return jsonify({**IngestResult().to_dict(), "ignored": len(events), "reason": refused})

        state = current_state()
        engine = state.checked_engine()
        valid, rejected = validate_events(events, state.limits())
        visitor = state.recs.current_visitor(may_track=True)
        with engine.begin() as conn:
            link_anonymous(conn, visitor)
            accepted, duplicates = store_events(conn, valid, visitor, source="web",
                                                suppressions=state.suppressions)
        result = IngestResult(accepted=accepted, duplicates=duplicates, rejected=rejected)
        return jsonify(result.to_dict())
