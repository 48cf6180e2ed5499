"""``GET /api/v1/...`` recommendation endpoints, ``/health`` and the OpenAPI document."""

from __future__ import annotations

import re
from typing import Any, NoReturn

from flask import Blueprint, Response, current_app, jsonify, request
from marshmallow import EXCLUDE, Schema, fields, validate
from webargs.flaskparser import FlaskParser

from ..assembly import current_state
from ..experiments.serving import ServedVariant
from ..serving.reasons import REASON_KINDS
from ..serving.recommender import Answer
from ..serving.rules import make_filters
from .errors import json_error
from .params import AsciiFloat, AsciiInteger

PERSONAL = "private, no-store"


class RecsQuerySchema(Schema):
    """Query parameters every recommendation endpoint takes."""

    class Meta:
        unknown = EXCLUDE  # e.g. a user_id from a browser: ignored, never trusted

    n = AsciiInteger(validate=validate.Range(min=1), metadata={
        "description": "how many items (at least 1; more than RECS_MAX_N gives RECS_MAX_N)"})
    category = fields.String(validate=validate.Length(max=255))
    min_price = AsciiFloat(allow_nan=False)
    max_price = AsciiFloat(allow_nan=False)
    exclude_ids = fields.String(data_key="exclude", metadata={"description": "comma-separated item ids (or the parameter repeated)"})
    context_category = fields.String(
        validate=validate.Length(max=255), metadata={"description": "category of the entry page (cold start)"}
    )


class ItemSchema(Schema):
    id = fields.String(required=True)
    title = fields.String(allow_none=True)
    url = fields.String(allow_none=True)
    image_url = fields.String(allow_none=True)
    price = fields.Float(allow_none=True)
    score = fields.Float()
    reason = fields.String(metadata={
        "description": "why the item was picked, as plain text that may hold a catalogue title: "
                       "escape it before putting it into HTML, or build a label from reason_kind"})
    reason_kind = fields.String(allow_none=True, validate=validate.OneOf(list(REASON_KINDS)), metadata={
        "description": "what kind of reason: " + ", ".join(REASON_KINDS)})
    reason_item_id = fields.String(allow_none=True, metadata={
        "description": "the item the reason names (e.g. the viewed item of because_you_viewed), if any"})
    token = fields.String(metadata={"description": "recommendation token for click attribution"})


class AnswerSchema(Schema):
    items = fields.List(fields.Nested(ItemSchema))
    model_version = fields.String(allow_none=True)
    source = fields.String(validate=validate.OneOf(["model", "fallback"]))
    variant = fields.String(allow_none=True, metadata={
        "description": "'experiment:variant' when an A/B test shaped the answer; put it on the events as context.variant"})


class HealthSchema(Schema):
    status = fields.String(validate=validate.OneOf(["ok", "degraded", "stale", "down"]))
    checks = fields.Dict(keys=fields.String(), values=fields.Dict(), metadata={
        "description": "database, model, scheduler, plugins: each with its own status"})
    reasons = fields.List(fields.String(), metadata={"description": "why the status is not ok"})
    model_version = fields.String(allow_none=True)
    model_age_seconds = fields.Float(allow_none=True)


class QueryError(Exception):
    def __init__(self, messages: Any) -> None:
        super().__init__("invalid query")
        self.messages = messages


parser = FlaskParser(unknown=EXCLUDE)
# One instance for every request: building a Schema deep-copies its fields (~0.5 ms each time).
QUERY_SCHEMA = RecsQuerySchema()
# Parameters other than ``n`` that the schema reads; a query without them needs no schema.
FILTER_PARAMETERS = frozenset(field.data_key or name for name, field in QUERY_SCHEMA.fields.items()) - {"n"}
# An ``n`` the schema would read as this very integer: plain ASCII digits, no sign or leading 0.
PLAIN_N = re.compile(r"[1-9][0-9]{0,8}", re.ASCII)


@parser.error_handler
def _raise_query_error(
    error: Any, req: Any, schema: Any, *, error_status_code: Any, error_headers: Any
) -> NoReturn:
    raise QueryError(error.messages)


def _parse() -> dict[str, Any]:
    """The query as the schema reads it. The common query (only ``n=8``, or nothing, plus
    parameters the schema ignores) is read directly, to the same result; any other goes
    through webargs, so values and error messages stay the schema's."""
    query = request.args
    if FILTER_PARAMETERS.isdisjoint(query.keys()):
        given = query.getlist("n")
        if not given:
            return {}
        if len(given) == 1 and PLAIN_N.fullmatch(given[0]):
            return {"n": int(given[0])}
    return parser.parse(QUERY_SCHEMA, request, location="query")


def _query() -> dict[str, Any]:
    args = _parse()
    config = current_app.config
    n = min(args.get("n") or config["RECS_DEFAULT_N"], config["RECS_MAX_N"])  # as recs.trending(n=...) does
    excluded = [part for value in request.args.getlist("exclude") for part in value.split(",") if part]
    filters = make_filters(args.get("category"), args.get("min_price"), args.get("max_price"), excluded)
    context = {"category": args["context_category"]} if args.get("context_category") else {}
    return {"n": n, "filters": filters, "context": context}


def _answer(answer: Answer, personal: bool = False, variant: ServedVariant | None = None) -> Response:
    if variant is not None:
        answer.variant = variant.tag
        personal = True  # the variant depends on who asks
    # The bytes jsonify writes outside debug mode, made once per cached answer (and variant).
    response = current_app.response_class(answer.to_json() + "\n", mimetype="application/json")
    if personal:
        response.headers["Cache-Control"] = PERSONAL
        response.headers["Vary"] = "Cookie"  # a new response has no Vary yet (response.vary parses it)
    return response




def _overrides(variant: ServedVariant | None) -> dict[str, Any] | None:
    return variant.overrides if variant is not None else None


def register_recommendation_routes(bp: Blueprint) -> None:
    @bp.errorhandler(QueryError)
    def query_error(exc: QueryError) -> Any:
        return json_error(400, "invalid query parameters", messages=exc.messages)

    @bp.get("/api/v1/similar/<path:item_id>")
    def similar(item_id: str) -> Response:
        q = _query()
        variant = current_state().variant_for("similar")
        return _answer(current_state().recommender.similar(item_id, q["n"], q["filters"], _overrides(variant)),
                       variant=variant)

    @bp.get("/api/v1/for-you")
    def for_you() -> Response:
        q = _query()
        visitor = current_state().recs.current_visitor()
        variant = current_state().variant_for("for-you", visitor)
        answer = current_state().recommender.for_you(visitor, q["n"], q["filters"], q["context"], _overrides(variant))
        return _answer(answer, personal=True, variant=variant)

    @bp.get("/api/v1/trending")
    def trending() -> Response:
        q = _query()
        variant = current_state().variant_for("trending")
        return _answer(current_state().recommender.trending(q["n"], q["filters"], q["context"], _overrides(variant)),
                       variant=variant)

    @bp.get("/api/v1/recently-viewed")
    def recently_viewed() -> Response:
        q = _query()
        visitor = current_state().recs.current_visitor()
        variant = current_state().variant_for("recently-viewed", visitor)
        answer = current_state().recommender.recently_viewed(visitor, q["n"], q["filters"], _overrides(variant))
        return _answer(answer, personal=True, variant=variant)

    @bp.get("/api/v1/bought-together/<path:item_id>")
    def bought_together(item_id: str) -> Response:
        q = _query()
        variant = current_state().variant_for("bought-together")
        answer = current_state().recommender.bought_together(item_id, q["n"], q["filters"], _overrides(variant))
        return _answer(answer, variant=variant)

    @bp.get("/health")
    def health() -> Response:
        from .health import health_report

        state = current_state()
        body, status = health_report(state, state.bundle_store)
        response = jsonify(body)
        response.status_code = status
        response.headers["Cache-Control"] = "no-store"
        return response

    @bp.get("/api/v1/openapi.json")
    def openapi() -> Response:
        from .openapi import build_spec

        # Paths as a client reaches them: behind a proxy's prefix too (SCRIPT_NAME).
        return jsonify(build_spec(request.script_root + current_app.config["RECS_URL_PREFIX"].rstrip("/")))
