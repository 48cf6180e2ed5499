"""``POST /api/v1/consent``: the visitor gives or withdraws consent to tracking.

The snippet calls it from ``recs('consent', true|false)``. The server owns both cookies: the
consent cookie (read by ``tracking.identity.tracking_refused``) and, on withdrawal, the HttpOnly
anonymous-id cookie, which JavaScript cannot clear; the history stored under that anonymous id
is erased with it (``recs.forget_anonymous``).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request

from ..assembly import current_state
from ..tracking.identity import cookie_anonymous_id
from .api import cookie_scope, read_limited_body
from .errors import json_error
from .refusals import guard


def register_consent(bp: Blueprint) -> None:
    @bp.post("/api/v1/consent")
    def post_consent() -> Any:
        """Set the consent cookie from ``{"consent": true|false}``; false forgets the anonymous id."""
        forbidden = guard("consent")
        if forbidden:
            return forbidden
        body = read_limited_body(1024)
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("consent"), bool):
            return json_error(400, 'body must be {"consent": true} or {"consent": false}')
        given: bool = payload["consent"]
        config = current_app.config
        scope = cookie_scope()
        response = jsonify({"consent": given})
        response.set_cookie(config["RECS_CONSENT_COOKIE"], "1" if given else "0",
                            max_age=config["RECS_COOKIE_MAX_AGE"], **scope)
        if not given:
            g.pop("recs_set_cookie", None)
            anonymous_id = cookie_anonymous_id(request)
            if anonymous_id:
                current_state().recs.forget_anonymous(anonymous_id)
            response.delete_cookie(config["RECS_COOKIE_NAME"], httponly=True, **scope)
        return response
