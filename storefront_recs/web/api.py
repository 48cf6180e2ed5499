"""``/api/v1/...``: event ingestion (recommendation endpoints live in ``web.recommend``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from ..assembly import current_state
from ..safe_input import parse_json
from ..tracking.identity import anonymous_cookie_value, link_anonymous, tracking_refused
from ..tracking.ingest import IngestResult, check_events, store_batch
from .errors import json_error
from .refusals import guard

ACCEPTED_MIMETYPES = {"application/json", "text/plain", ""}




def read_limited_body(limit: int) -> bytes | None:
    """The request body, or None when it is over ``limit``; never reads more than limit + 1."""
    if request.content_length is not None and request.content_length > limit:
        return None
    body = request.stream.read(limit + 1)
    return None if len(body) > limit else body


# A body may nest this many times deeper than one event may (RECS_MAX_JSON_DEPTH): an event
# over its own limit is rejected alone, a body over this one is refused whole with 400.
BODY_DEPTH_FACTOR = 4


def parse_envelope(body: bytes, max_depth: int = 16) -> list[Any]:
    """``{"events": [...]}`` or a single event object -> list of raw events. Raises
    ``ValueError`` for a body that is not JSON, nested deeper than ``max_depth`` times
    ``BODY_DEPTH_FACTOR``, or of another shape."""
    payload = parse_json(body, max_depth * BODY_DEPTH_FACTOR)
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
            config["RECS_COOKIE_NAME"], anonymous_cookie_value(value), max_age=config["RECS_COOKIE_MAX_AGE"],
            httponly=True, **cookie_scope(),
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
            events = parse_envelope(body, config["RECS_MAX_JSON_DEPTH"])
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
        valid, rejected = check_events(events, state.limits())
        visitor = state.recs.current_visitor(may_track=True)
        result = store_batch(engine, valid, visitor, "web", prepare=lambda conn: link_anonymous(conn, visitor),
                             suppressions=state.suppressions)
        result.rejected = sorted(rejected + result.rejected, key=lambda r: r["index"])
        return jsonify(result.to_dict())
