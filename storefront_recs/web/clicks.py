"""``GET /c/<token>``: the signed click link of email blocks, and the ``recs_email_block``
Jinja global. The redirect target always comes from the catalogue, never from the request."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request
from werkzeug.wrappers import Response

from ..assembly import current_state
from ..email.clicks import Destination, destination, record_click
from ..email.links import forwarded_utm, public_base, with_query
from ..email.tokens import ClickTokens, TokenError
from ..outages import keep_last_good
from ..tracking.identity import tracking_refused

ERROR_TEMPLATE = "storefront_recs/email/link_error.html"


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def email_click(token: str) -> Response:
    state = current_state()
    config = state.config
    public_url = public_base(config["RECS_PUBLIC_URL"] or request.url_root)  # with the app's prefix
    home = public_url + "/" if config["RECS_PUBLIC_URL"] else request.script_root + "/"
    try:
        click = ClickTokens(state.secret).loads(token, float(config["RECS_EMAIL_TOKEN_MAX_AGE"]))
    except TokenError as exc:
        status = 410 if exc.reason == "expired" else 400
        page = render_template(ERROR_TEMPLATE, reason=exc.reason, home=home)
        return _no_store(Response(page, status=status, mimetype="text/html"))
    try:
        target = destination(state.recommender, click, public_url, home,
                             bool(config["RECS_EMAIL_SUBSTITUTE_OUT_OF_STOCK"]))
    except Exception as exc:  # a database outage before the catalogue was ever read: home
        keep_last_good("a click link", exc, have_copy=True)
        target = Destination(home, None)
    # Link scanners send HEAD; DNT, GPC or missing consent: redirect, but store nothing.
    if request.method == "GET" and tracking_refused(request) is None:
        visitor = state.recs.current_visitor(may_track=True)  # may issue the anonymous-id cookie
        try:
            record_click(state.checked_engine(), state.limits(), state.suppressions, click,
                         visitor.anonymous_id, target)
        except Exception as exc:  # a database outage: the visitor still gets to the shop
            keep_last_good("a click link", exc, have_copy=True)
    location = with_query(target.location, forwarded_utm(request.args))
    return _no_store(redirect(location, 302))


def register_clicks(bp: Blueprint) -> None:
    """The click route, registered with the blueprint."""
    bp.add_url_rule("/c/<token>", "email_click", email_click, methods=["GET"])


__all__ = ["register_clicks"]
