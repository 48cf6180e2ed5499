"""The HTTP API against its own OpenAPI document (schemathesis): for a bounded number of
generated requests per operation, no 5xx, and every response matches the document.

RECS_SCHEMATHESIS_EXAMPLES sets the number of examples per operation (default 40)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from conftest import make_app
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks
from test_serving import seed_shop

EXAMPLES = int(os.environ.get("RECS_SCHEMATHESIS_EXAMPLES", "40"))
CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance]


@pytest.fixture
def trained_app(database_uri: str, tmp_path: Path) -> Iterator[Flask]:
    """A small trained shop on each database."""
    app = make_app(database_uri, tmp_path, RECS_CATALOG_REFRESH_SECONDS=0, RECS_ALS_FACTORS=8,
                   RECS_ALS_ITERATIONS=3, RECS_BLEND_AUTO=False)
    recs = app.extensions["storefront_recs"].recs
    seed_shop(recs, items_per_category=6, users=24)
    assert recs.train().published
    yield app
    app.extensions["storefront_recs"].engine.dispose()


def operations() -> list[tuple[str, str]]:
    """(method, path) of every documented operation (the document does not depend on the app)."""
    from storefront_recs.web.openapi import build_spec

    paths = build_spec("/recs")["paths"]
    return [(method.upper(), path) for path, item in paths.items() for method in item]


@pytest.mark.parametrize(("method", "path"), operations())
def test_every_operation_answers_as_documented_and_never_5xx(trained_app: Flask, method: str, path: str) -> None:
    schema = schemathesis.openapi.from_wsgi("/recs/api/v1/openapi.json", trained_app)
    operation = schema[path][method]

    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def call(case) -> None:  # type: ignore[no-untyped-def]
            case.call_and_validate(checks=CHECKS)

        try:
            call()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # an operation without parameters has no invalid input
