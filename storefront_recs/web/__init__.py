"""The blueprint: JSON API, widgets, click links, admin."""

from __future__ import annotations

from flask import Blueprint, Flask

from ..errors import ConfigurationError
from .admin import register_admin
from .api import register_api
from .clicks import register_clicks
from .errors import register_error_handlers
from .host_csrf import install as exempt_from_host_csrf
from .origin import allowed_origins
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


def mount(app: Flask, prefix: str) -> None:
    """Register the blueprint at ``prefix``, keep the shop's CSRF extension off it (its POSTs
    check their origin instead) and check the web settings."""
    try:
        allowed_origins(app.config["RECS_ALLOWED_ORIGINS"])
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    app.register_blueprint(create_blueprint(), url_prefix=prefix.rstrip("/"))
    exempt_from_host_csrf(app)
