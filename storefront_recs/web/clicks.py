"""``GET /c/<token>``: the signed click link of email blocks, and the ``recs_email_block``
Jinja global. The redirect target always comes from the catalogue, never from the request."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request
from flask.blueprints import BlueprintSetupState
from werkzeug.wrappers import Response

from ..email.clicks import destination, record_click
from ..email.links import forwarded_utm, public_base, with_query
from ..email.tokens import ClickTokens, TokenError
from ..tracking.identity import tracking_refused

ERROR_TEMPLATE = "storefront_recs/email/link_error.html"


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def email_click(token: str) -> Response:
    state = current_app.extensions["storefront_recs"]
    config = state.config
    public_url = public_base(config["RECS_PUBLIC_URL"] or request.url_root)  # with the app's prefix
    home = public_url + "/" if config["RECS_PUBLIC_URL"] else request.script_root + "/"
    try:
        click = ClickTokens(state.secret).loads(token, float(config["RECS_EMAIL_TOKEN_MAX_AGE"]))
    except TokenError as exc:
        status = 410 if exc.reason == "expired" else 400
        page = render_template(ERROR_TEMPLATE, reason=exc.reason, home=home)
        return _no_store(Response(page, status=status, mimetype="text/html"))
    target = destination(state, click, public_url, home)
    # Link scanners send HEAD; DNT, GPC or missing consent: redirect, but store nothing.
    if request.method == "GET" and tracking_refused(request) is None:
        visitor = state.recs.current_visitor(may_track=True)  # may issue the anonymous-id cookie
        record_click(state, click, visitor.anonymous_id, target)
    location = with_query(target.location, forwarded_utm(request.args))
    return _no_store(redirect(location, 302))


def _register_globals(setup: BlueprintSetupState) -> None:
    from ..email.api import recs_email_block

    setup.app.jinja_env.globals["recs_email_block"] = recs_email_block


def register_clicks(bp: Blueprint) -> None:
    """The click route and the Jinja global, registered with the blueprint."""
    bp.add_url_rule("/c/<token>", "email_click", email_click, methods=["GET"])
    bp.record_once(_register_globals)


__all__ = ["register_clicks"]
