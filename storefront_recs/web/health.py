"""``GET /recs/health``: each part's state, and one status whose HTTP code a load balancer reads.

Parts: ``database`` (a ``SELECT 1``), ``model`` (loaded, its version and age, its files still on
disk), ``scheduler`` (the latest training run), ``plugins``. The status:

- ``ok`` (200): everything works;
- ``stale`` (200): the model is older than ``RECS_MAX_MODEL_AGE``;
- ``degraded`` (200, with ``reasons``): answers come from memory or fallbacks (database down
  with a model loaded, no model yet, the newest bundle refused, bundle files gone from disk,
  the latest training run failed);
- ``down`` (503): it cannot serve (database down and no model in memory).
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine, select, text

from ..db import utcnow
from ..engine.run_safety import fail_dead_runs
from ..errors import NotMigratedError
from ..models import ModelRun
from ..outages import database_unavailable
from ..plugins import SOURCES, TRAINERS, plugin_status
from ..serving.model import ServingStore

Check = dict[str, Any]


def database_check(state: Any) -> Check:
    """``ok`` when a ``SELECT 1`` answers and the recs tables are migrated. A connection the
    server dropped (it restarted) is discarded by the pool on first use, so one more try tells a
    live server from a dead one."""
    engine = state.engine
    for attempt in (1, 2):
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            state.checked_engine()  # checked once per worker
            return {"status": "ok"}
        except NotMigratedError as exc:
            return {"status": "down", "error": str(exc)}
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            if attempt == 2 or not getattr(exc, "connection_invalidated", False):
                return {"status": "down", "error": type(getattr(exc, "orig", exc) or exc).__name__}
    raise AssertionError("unreachable")


def model_check(store: ServingStore, max_age: float) -> Check:
    bundle = store.current()
    if bundle is None:
        return {"status": "degraded", "loaded": False, "reason": "no model bundle is loaded: fallbacks serve"}
    age = round((utcnow() - bundle.created_at).total_seconds(), 1)
    check: Check = {"status": "ok", "loaded": True, "version": bundle.version, "age_seconds": age}
    missing = [name for name in bundle.manifest.get("files", {}) if not os.path.isfile(os.path.join(bundle.path, name))]
    if missing:
        check.update(status="degraded", reason=f"the serving bundle's files are gone from disk ({len(missing)} "
                                                f"missing): a restarted worker could not load it")
    elif store.pointer() != bundle.version:
        check.update(status="degraded", reason=f"the newest bundle {store.pointer()} could not be loaded: "
                                               f"{bundle.version} serves")
    elif age > max_age:
        check.update(status="stale", reason=f"the model is older than RECS_MAX_MODEL_AGE ({max_age:g} s)")
    return check


def scheduler_check(engine: Engine, database_up: bool, scheduler: Any) -> Check:
    check: Check = {"status": "ok", "embedded": scheduler is not None}
    if not database_up:
        check.update(status="unknown", last_run=None)
        return check
    fail_dead_runs(engine)  # a run whose process died (no heartbeat) is reported as failed
    with engine.connect() as conn:
        row = conn.execute(select(ModelRun.status, ModelRun.trigger, ModelRun.started_at, ModelRun.finished_at,
                                  ModelRun.message).order_by(ModelRun.id.desc()).limit(1)).first()
    if row is None:
        check["last_run"] = None
        return check
    check["last_run"] = {"status": row.status, "trigger": row.trigger, "started_at": _iso(row.started_at),
                         "finished_at": _iso(row.finished_at)}
    if row.status == "failed":
        check.update(status="degraded", reason=f"the latest training run failed: {row.message or ''}".strip())
    return check


def plugins_check(config: Any, store: ServingStore) -> Check:
    """Installed plugins, the ones that failed to load, and whether what this app enables (and
    what the serving bundle was trained with) is loaded: degraded when not."""
    status = plugin_status()
    loaded = {(info.group, info.name) for info in status if info.ok}
    check: Check = {"status": "ok", "loaded": sorted(f"{g.rsplit('.', 1)[-1]}:{n}" for g, n in loaded),
                    "failed": {f"{i.group.rsplit('.', 1)[-1]}:{i.name}": i.error for i in status if not i.ok}}
    wanted = {(SOURCES, name) for name in config.get("RECS_SOURCES") or ()} | {(TRAINERS, config["RECS_TRAINER"])}
    bundle = store.current() if store.pointer() else None
    if bundle is not None:
        wanted |= {(SOURCES, name) for name in bundle.manifest.get("sources") or {}}
    missing = sorted(f"{g.rsplit('.', 1)[-1]}:{n}" for g, n in wanted - loaded)
    if missing:
        check.update(status="degraded", reason=f"enabled plugins not loaded: {', '.join(missing)}")
    return check


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


def health_report(state: Any, store: ServingStore) -> tuple[dict[str, Any], int]:
    """The health document and its HTTP status."""
    engine = state.engine
    checks: dict[str, Check] = {"database": database_check(state)}
    database_up = checks["database"]["status"] == "ok"
    checks["model"] = model_check(store, float(state.config["RECS_MAX_MODEL_AGE"]))
    checks["scheduler"] = scheduler_check(engine, database_up, getattr(state, "scheduler", None))
    checks["plugins"] = plugins_check(state.config, store)
    model = checks["model"]
    reasons = [c.get("reason") or f"{name} is {c['status']}" for name, c in checks.items()
               if c["status"] not in ("ok", "unknown")]
    if not database_up and not model["loaded"]:
        status = "down"
    elif not database_up or any(c["status"] == "degraded" for c in checks.values()):
        status = "degraded"
    elif model["status"] == "stale":
        status = "stale"
    else:
        status = "ok"
    body: dict[str, Any] = {"status": status, "checks": checks, "model_version": model.get("version"),
                            "model_age_seconds": model.get("age_seconds")}
    if reasons:
        body["reasons"] = reasons
    return body, 503 if status == "down" else 200
