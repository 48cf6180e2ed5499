"""JSON errors for the blueprint's routes only; the shop's own error pages stay untouched."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from werkzeug.exceptions import HTTPException

from ..errors import NotMigratedError


def json_error(status: int, reason: str, **extra: object) -> tuple[Response, int]:
    return jsonify({"error": reason, **extra}), status


def register_error_handlers(bp: Blueprint) -> None:
    @bp.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        return json_error(exc.code or 500, exc.description or exc.name)

    @bp.errorhandler(NotMigratedError)
    def not_migrated(exc: NotMigratedError) -> tuple[Response, int]:
        return json_error(503, str(exc))
