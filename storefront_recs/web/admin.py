"""``/recs/admin/``: the dashboard. Every route asks the host's admin check first (default: nobody
may enter); every POST form carries a per-session CSRF token."""

from __future__ import annotations

import hmac
import secrets
import threading
from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    get_flashed_messages,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from itsdangerous import BadData, URLSafeTimedSerializer

from ..assembly import current_state, state_of
from ..db import utcnow
from ..engine.run_safety import fail_dead_runs
from ..errors import ConfigurationError
from ..experiments import charts, insights
from ..experiments.explain import explain
from ..safe_input import parse_json, text_problem
from ..serving.recommendation import WIDGET_KINDS
from ..tracking.identity import Visitor
from ..tracking.revenue import RevenuePolicy
from . import refusals
from .errors import register_admin_error_handlers
from .params import ascii_int

CSRF_SESSION_KEY = "recs_admin_csrf"
CSRF_MAX_AGE = 12 * 3600
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}




def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_state().secret, salt="storefront-recs.admin-csrf")


def csrf_token() -> str:
    """The token the dashboard's forms carry: this session's random value, signed."""
    raw = session.get(CSRF_SESSION_KEY)
    if not raw:
        raw = session[CSRF_SESSION_KEY] = secrets.token_urlsafe(24)
    return _serializer().dumps(raw)


def csrf_valid() -> bool:
    token = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    expected = session.get(CSRF_SESSION_KEY)
    if not token or not expected:
        return False
    try:
        raw = _serializer().loads(token, max_age=CSRF_MAX_AGE)
    except BadData:
        return False
    return isinstance(raw, str) and hmac.compare_digest(raw, expected)


def _refuse(status: int, reason: str) -> Response:
    if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
        response = Response(render_template("storefront_recs/admin/refused.html", status=status, reason=reason),
                            status=status, mimetype="text/html")
    else:
        response = jsonify({"error": reason})
        response.status_code = status
    return response


def _guard() -> Response | None:
    if not current_state().recs.is_admin():
        return _refuse(403, "the admin dashboard is only for the shop's administrators")
    if request.method == "POST" and not csrf_valid():
        return _refuse(400, "the form's CSRF token is missing, expired or from another session")
    problem = text_problem(list(request.form.items(multi=True))) if request.method == "POST" else None
    if problem is not None:
        return _refuse(400, f"the form cannot be saved: {problem}")
    return None


def _secure(response: Response) -> Response:
    for header, value in SECURITY_HEADERS.items():
        response.headers.setdefault(header, value)
    return response


def _start_training(app: Any) -> None:
    """Train in a background thread; the DB lease makes a second trigger a no-op."""
    def run() -> None:
        with app.app_context():
            try:
                state_of(app).recs.train(trigger="dashboard")
            except Exception:  # recorded in recs_model_runs by the engine; keep the thread quiet
                app.logger.exception("storefront-recs: training from the dashboard failed")

    threading.Thread(target=run, name="recs-dashboard-train", daemon=True).start()


def _dashboard_context(days: int) -> dict[str, Any]:
    state = current_state()
    recs, config = state.recs, state.config
    until = utcnow()
    since = until - timedelta(days=days)
    window = float(config["RECS_ATTRIBUTION_WINDOW"])
    fail_dead_runs(state.checked_engine())  # a run whose process died is listed as failed
    with state.checked_engine().connect() as conn:
        runs = insights.model_runs(conn)
        labels, series = insights.traffic(conn, since, until)
        policy = RevenuePolicy.from_config(config)
        widgets = insights.funnels(conn, "widget", since, until, window, revenue_policy=policy)
        campaigns = insights.funnels(conn, "campaign", since, until, window,
                                     extra_impressions=insights.email_sends(conn, since, until), revenue_policy=policy)
        coverage = insights.coverage(conn, since, until)
        top = insights.top_items(conn, since, until)
        refused = refusals.counts(conn, days)
    experiments = [recs.experiment_results(e.key) for e in recs.experiments()]
    chrono = [r for r in reversed(runs) if r["ndcg"] is not None]
    return {
        "days": days, "since": since, "until": until, "runs": runs, "widgets": widgets, "campaigns": campaigns,
        "coverage": coverage, "top": top, "experiments": experiments, "refused": refused,
        "runs_chart": charts.line_chart(
            [(r["version"] or str(r["id"]))[-6:] for r in chrono],
            {"model NDCG@10": [r["ndcg"] for r in chrono],
             "popularity NDCG@10": [r["popularity_ndcg"] or 0.0 for r in chrono]},
            label="NDCG@10 of each training run against the popularity baseline", width=900) if chrono else None,
        "traffic_chart": charts.line_chart(labels, series, label=f"Events per day, last {days} days", width=900)
        if series else None,
        "widget_chart": charts.bar_chart([(w.name, w.ctr) for w in widgets], percent=True, width=440,
                                         label="Click-through rate per widget") if widgets else None,
        "campaign_chart": charts.bar_chart([(c.name, c.ctr) for c in campaigns], percent=True, width=440,
                                           colour=charts.PALETTE[1],
                                           label="Click-through rate per email campaign") if campaigns else None,
        "top_chart": charts.bar_chart([(t["title"], float(t["clicks"])) for t in top], colour=charts.PALETTE[2],
                                      label="Clicks from recommendations per item") if top else None,
        "experiment_charts": {r.experiment.key: _experiment_charts(r) for r in experiments},
    }


def _experiment_charts(result: Any) -> dict[str, Any]:
    def rows(metric: str) -> list[charts.Interval]:
        return [charts.Interval(v.name, getattr(v, metric).value, getattr(v, metric).low, getattr(v, metric).high,
                                v.baseline) for v in result.variants]

    key = result.experiment.key
    return {
        "conversion": charts.interval_chart(rows("conversion"), width=420,
                                            label=f"{key}: conversion rate per variant"),
        "revenue": charts.interval_chart(rows("revenue_per_visitor"), percent=False, width=420,
                                         label=f"{key}: revenue per visitor per variant"),
        "ctr": charts.interval_chart(rows("ctr"), width=420, label=f"{key}: click-through rate per variant"),
    }


def _back(message: str) -> Response:
    """Back to the dashboard, which shows ``message`` once. The message travels in the signed
    session (flashed), never in the URL: a link cannot make the dashboard say anything."""
    flash(message, "recs-admin")
    return redirect(url_for(".index"), code=303)  # type: ignore[return-value]


def register_admin(bp: Blueprint) -> None:
    """Mount the dashboard under the recs blueprint (``/recs/admin/``)."""
    admin = Blueprint("admin", __name__, url_prefix="/admin")
    admin.before_request(_guard)
    admin.after_request(_secure)
    register_admin_error_handlers(admin)

    @admin.app_context_processor
    def _csrf() -> dict[str, Any]:
        return {"recs_admin_csrf_token": csrf_token}

    @admin.get("/")
    def index() -> str:
        days = min(max(ascii_int(request.args.get("days"), 30) or 30, 1), 365)
        messages = get_flashed_messages(category_filter=["recs-admin"])
        return render_template("storefront_recs/admin/dashboard.html", message=" ".join(map(str, messages)) or None,
                               widget_kinds=WIDGET_KINDS, **_dashboard_context(days))

    @admin.get("/why")
    def why() -> str:
        state = current_state()
        user_id = (request.args.get("user_id") or "").strip()
        anonymous_id = (request.args.get("anonymous_id") or "").strip()
        item_id = (request.args.get("item") or "").strip()
        explanation = None
        if item_id and (user_id or anonymous_id):
            visitor = Visitor(state.user_key(user_id) if user_id else None, anonymous_id or None)
            variant = _stored_variant(visitor)
            explanation = explain(state.recommender, visitor, item_id,
                                  variant=variant.tag if variant else None,
                                  overrides=variant.overrides if variant else None)
        return render_template("storefront_recs/admin/why.html", explanation=explanation, user_id=user_id,
                               anonymous_id=anonymous_id, item_id=item_id)

    @admin.post("/train")
    def train() -> Response:
        _start_training(current_app._get_current_object())  # type: ignore[attr-defined]
        return _back("Training started: the new run shows below when it is done.")

    @admin.post("/experiments/<key>/<action>")
    def experiment_status(key: str, action: str) -> Response:
        if action not in ("pause", "resume"):
            return _refuse(404, f"no action {action!r}")
        try:
            current_state().recs.set_experiment_status(key, "paused" if action == "pause" else "running")
        except KeyError:
            return _refuse(404, f"no experiment {key!r}")
        return _back(f"Experiment {key} {'paused' if action == 'pause' else 'resumed'}.")

    @admin.post("/experiments")
    def create_experiment() -> Response:
        form = request.form
        try:
            variants = parse_json(form.get("variants") or "[]", max_depth=8)
            widgets = [w for w in form.getlist("widgets") if w] or None
            current_state().recs.create_experiment({
                "key": form.get("key", "").strip(), "name": form.get("name", "").strip(), "variants": variants,
                "widgets": widgets, "start": form.get("start") or None, "end": form.get("end") or None,
            })
        except (ValueError, TypeError, ConfigurationError) as exc:
            return _refuse(400, f"experiment not created: {exc}")
        return _back(f"Experiment {form.get('key')} created and running.")

    bp.register_blueprint(admin)


def _stored_variant(visitor: Visitor) -> Any:
    """The visitor's variant for for-you as stored (the inspector never assigns anyone)."""
    from sqlalchemy import or_, select

    from ..experiments.serving import ServedVariant
    from ..models import ExperimentAssignment as A

    state = current_state()
    now = utcnow()
    running = [e for e in state.recs.experiments() if e.active(now) and e.applies_to("for-you")]
    who = []
    if visitor.user_key:
        who.append(A.user_key == visitor.user_key)
    if visitor.anonymous_id:
        who.append(A.anonymous_id == visitor.anonymous_id)
    with state.checked_engine().connect() as conn:
        for experiment in running:
            name = conn.scalar(select(A.variant).where(A.experiment_id == experiment.id, or_(*who)).limit(1))
            found = experiment.variant(name) if name else None
            if found is not None:
                return ServedVariant(experiment.key, found.name, dict(found.overrides))
    return None
