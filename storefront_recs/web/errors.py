"""JSON errors for the blueprint's routes only; the shop's own error pages stay untouched."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, render_template, request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException

from ..errors import NotMigratedError
from ..outages import database_unavailable, outage_log
from ..safe_input import text_problem

UNAVAILABLE = "the recommendation database is unavailable; retry later"


def json_error(status: int, reason: str, **extra: object) -> tuple[Response, int]:
    return jsonify({"error": reason, **extra}), status


def retry_after() -> str:
    return str(int(current_app.config["RECS_RETRY_AFTER_SECONDS"]))


def unavailable_json() -> Response:
    """503 with ``Retry-After``: the snippet keeps the events and sends them again later."""
    response, status = json_error(503, UNAVAILABLE)
    response.status_code = status
    response.headers["Retry-After"] = retry_after()
    response.headers["Cache-Control"] = "no-store"
    return response


def _outage(exc: Exception) -> None:
    """Re-raise ``exc`` unless it is a database outage (then log it, at most once a minute)."""
    if not database_unavailable(exc):
        raise exc
    outage_log.warn(f"{request.method} {request.url_rule or request.path}", exc)


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

    @bp.errorhandler(DBAPIError)
    @bp.errorhandler(PoolTimeoutError)
    def database_error(exc: Exception) -> Response:
        _outage(exc)
        return unavailable_json()


def register_admin_error_handlers(admin: Blueprint) -> None:
    """The dashboard's outage page: HTML (or JSON when asked), never a traceback."""

    @admin.errorhandler(DBAPIError)
    @admin.errorhandler(PoolTimeoutError)
    def database_error(exc: Exception) -> Response:
        _outage(exc)
        if request.accept_mimetypes.best_match(["application/json", "text/html"]) != "text/html":
            return unavailable_json()
        page = render_template("storefront_recs/admin/refused.html", status=503,
                               reason="The recommendation database is unavailable. Recommendations are "
                                      "served from memory meanwhile; try this page again later.")
        response = Response(page, status=503, mimetype="text/html")
        response.headers["Retry-After"] = retry_after()
        response.headers["Cache-Control"] = "no-store"
        return response
