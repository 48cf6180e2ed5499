"""JSON errors for the blueprint's routes only; the shop's own error pages stay untouched."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from ..errors import NotMigratedError
from ..safe_input import text_problem


def json_error(status: int, reason: str, **extra: object) -> tuple[Response, int]:
    return jsonify({"error": reason, **extra}), status


def refuse_unstorable_text() -> tuple[Response, int] | None:
    """400 for a path or query parameter no database could compare with (a NUL, say): the
    request is refused before any query is built from it."""
    problem = text_problem([list((request.view_args or {}).values()), list(request.args.items(multi=True))])
    if problem is not None:
        return json_error(400, f"invalid request parameter: {problem}")
    return None


def register_error_handlers(bp: Blueprint) -> None:
    bp.before_request(refuse_unstorable_text)

    @bp.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        return json_error(exc.code or 500, exc.description or exc.name)

    @bp.errorhandler(NotMigratedError)
    def not_migrated(exc: NotMigratedError) -> tuple[Response, int]:
        return json_error(503, str(exc))
