"""The blueprint: JSON API, widgets, click links, admin."""

from __future__ import annotations

from flask import Blueprint

from .admin import register_admin
from .api import register_api
from .clicks import register_clicks
from .errors import register_error_handlers
from .recommend import register_recommendation_routes
from .snippet import register_snippet


def create_blueprint() -> Blueprint:
    bp = Blueprint(
        "storefront_recs",
        __name__,
        static_folder="../static",
        static_url_path="/static",
        template_folder="../templates",
    )
    register_error_handlers(bp)
    register_api(bp)
    register_admin(bp)
    register_recommendation_routes(bp)
    register_snippet(bp)
    register_clicks(bp)
    return bp
