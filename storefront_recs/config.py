"""Every ``RECS_*`` setting: its default, the types it accepts and one line of meaning.

``Recs.init_app`` applies these with ``app.config.setdefault`` and then checks every value
(:func:`validate`), so a shop overrides any of them in its own config and a wrong one fails at
start-up, naming the setting. ``docs/configuration.md`` is generated from this table.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, TypeVar

from .errors import ConfigurationError

_NUMBER = (int, float)


@dataclass(frozen=True)
class Setting:
    default: Any
    help: str
    types: tuple[Any, ...] | None = None  # accepted types (classes or ABCs); default: the default's type

    def accepted(self) -> tuple[Any, ...]:
        if self.types is not None:
            return self.types
        default = self.default
        if isinstance(default, bool):
            return (bool,)
        if isinstance(default, int | float):
            return _NUMBER
        if isinstance(default, dict):
            return (Mapping,)
        if isinstance(default, list | tuple):
            return (list, tuple)
        return (type(default),)


DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 1.0,
    "add_to_cart": 4.0,
    "remove_from_cart": 0.0,
    "purchase": 8.0,
    "impression": 0.0,
    "page_view": 0.0,
    "search": 0.0,
}

SETTINGS: dict[str, Setting] = {
    # storage
    "RECS_DATABASE_URI": Setting(
        None,
        "SQLAlchemy URL of the recs database; default: SQLite file in the app's instance folder. "
        "Ignored when Recs(app, db=db) shares the shop's Flask-SQLAlchemy engine.", types=(str,),
    ),
    "RECS_ENGINE_OPTIONS": Setting({}, "Extra keyword arguments for sqlalchemy.create_engine."),
    "RECS_MODEL_DIR": Setting(
        None, "Folder for model bundles; default: 'recs_models' in the app's instance folder.", types=(str,),
    ),
    "RECS_SECRET_KEY": Setting(
        None,
        "Secret for hashing user ids and signing tokens; default: the app's SECRET_KEY, else a "
        "key generated once into the instance folder.", types=(str, bytes),
    ),
    "RECS_SECRET_KEY_FALLBACKS": Setting(
        [], "Older secrets still accepted on anonymous-id cookies while keys rotate (the cookie is "
        "signed again with the current one); with no RECS_SECRET_KEY, Flask's SECRET_KEY_FALLBACKS count too.",
    ),
    "RECS_HASH_USER_IDS": Setting(
        True, "Store shop user ids as keyed hashes (HMAC-SHA256), not in the clear."
    ),
    # web
    "RECS_URL_PREFIX": Setting("/recs", "Where the blueprint is mounted."),
    "RECS_PUBLIC_URL": Setting(
        None, "Absolute base URL of the shop (for email links); default: the request's host URL.", types=(str,),
    ),
    "RECS_ALLOWED_ORIGINS": Setting(
        [],
        "Other origins (e.g. 'https://www.shop.example') whose pages may POST events and consent "
        "with the visitor's cookies; the shop's own origin and RECS_PUBLIC_URL's always may.",
    ),
    "RECS_COOKIE_NAME": Setting("recs_aid", "Name of the first-party anonymous-id cookie."),
    "RECS_COOKIE_MAX_AGE": Setting(34_128_000, "Lifetime of the anonymous-id cookie in seconds (395 days)."),
    "RECS_COOKIE_SECURE": Setting(
        None, "Secure flag of the cookie; default: set when the request came over HTTPS.", types=(bool,),
    ),
    "RECS_COOKIE_DOMAIN": Setting(None, "Domain of the cookie; default: the current host only.", types=(str,)),
    # ingestion limits
    "RECS_MAX_BODY_BYTES": Setting(64 * 1024, "Largest accepted event POST body, in bytes."),
    "RECS_MAX_BATCH_EVENTS": Setting(100, "Most events accepted in one POST."),
    "RECS_MAX_EVENT_BYTES": Setting(8 * 1024, "Largest single event, as compact JSON, in bytes."),
    "RECS_MAX_FUTURE_SECONDS": Setting(
        300, "How far in the future a client 'ts' may be before the event is rejected."
    ),
    "RECS_MAX_PURCHASE_LINES": Setting(200, "Most line items in one purchase event."),
    "RECS_MAX_JSON_DEPTH": Setting(
        16, "Deepest nesting of arrays and objects in one event (the body is refused with 400 beyond it)."
    ),
    "RECS_MAX_QUANTITY": Setting(10_000, "Largest quantity of an event or purchase line."),
    "RECS_MAX_PRICE": Setting(1e9, "Largest unit price of a purchase line."),
    "RECS_MAX_VALUE": Setting(
        1e12, "Largest value of an event, and of a purchase line's price x quantity."
    ),
    # privacy
    "RECS_RESPECT_DNT": Setting(True, "Store nothing for requests with DNT: 1 or Sec-GPC: 1."),
    "RECS_REQUIRE_CONSENT": Setting(
        False, "Store nothing until the visitor has the consent cookie set to '1'."
    ),
    "RECS_CONSENT_COOKIE": Setting("recs_consent", "Name of the consent cookie ('1' = given)."),
    "RECS_RETENTION_DAYS": Setting(760, "Delete events older than this many days."),
    "RECS_RETENTION_DAYS_BY_TYPE": Setting(
        {}, "Per-event-type retention in days, overriding RECS_RETENTION_DAYS (e.g. {'impression': 90})."
    ),
    "RECS_RETENTION_CRON": Setting(
        "17 3 * * *", "When the scheduler runs the retention purge (crontab, UTC; empty = never)."
    ),
    "RECS_RETENTION_BATCH_SIZE": Setting(
        5000, "Rows deleted per transaction by the retention job (short locks on a busy table)."
    ),
    "RECS_SUPPRESS_ERASED_USERS": Setting(
        True, "forget_user also adds the person to a suppression list: their future events are not stored."
    ),
    # training
    "RECS_EVENT_WEIGHTS": Setting(
        DEFAULT_EVENT_WEIGHTS, "Interaction weight per event type (0 = not an interaction)."
    ),
    "RECS_TRAIN_INTERVAL": Setting(3600, "Seconds between scheduled training runs (0 = never)."),
    "RECS_RETRY_AFTER_SECONDS": Setting(
        30, "Retry-After (seconds) of the 503 answers given while the database is unavailable."
    ),
    "RECS_MAX_MODEL_AGE": Setting(
        3 * 24 * 3600, "Health reports 'stale' when the serving model is older than this (seconds)."
    ),
    # training engine (storefront_recs/engine)
    "RECS_ALS_FACTORS": Setting(64, "Latent factors of the ALS model."),
    "RECS_ALS_REGULARIZATION": Setting(0.05, "L2 regularisation of the ALS model."),
    "RECS_ALS_ALPHA": Setting(10.0, "Confidence scaling of interactions in ALS (C = 1 + alpha * r)."),
    "RECS_ALS_ITERATIONS": Setting(
        15, "ALS iterations in all: the evaluated fit on the time split runs all but the refit ones."
    ),
    "RECS_ALS_REFIT_ITERATIONS": Setting(
        3, "Of those, the last ones: on the full matrix, warm-started from the evaluated model."
    ),
    "RECS_TRAIN_SEED": Setting(42, "Random seed: the same events and settings give the same model."),
    "RECS_HALF_LIFE_DAYS": Setting(
        90.0, "Half-life of an interaction's weight, in days before the newest event (0 = no decay)."
    ),
    "RECS_DECAY_FLOOR": Setting(
        0.05, "Least weight time decay leaves an old interaction (a fraction of its full weight)."
    ),
    "RECS_DEDUP_SECONDS": Setting(
        60, "Repeats of the same visitor, item and event type within this many seconds count once."
    ),
    "RECS_SESSION_GAP_SECONDS": Setting(
        1800, "A visitor's inactivity gap that ends a session (for 'bought together')."
    ),
    "RECS_ITEMITEM_K": Setting(50, "Neighbours kept per item by the item-item (cosine) model."),
    "RECS_CONTENT_DIMS": Setting(64, "Size of the content vectors (TF-IDF reduced by truncated SVD)."),
    "RECS_TRENDING_DAYS": Setting(
        1.0, "Recent window of 'trending', in days; compared with the 7 windows before it."
    ),
    "RECS_ANN_MODE": Setting(
        "auto", "Neighbour search for similar items (ALS and content): 'exact', 'annoy', or 'auto' (Annoy "
        "from RECS_ANN_MIN_ITEMS items). For-you is always exact: faster than Annoy at equal recall.",
    ),
    "RECS_ANN_MIN_ITEMS": Setting(
        200_000, "Catalogue size from which 'auto' uses Annoy (below it, exact search costs ~3 ms or less "
        "per uncached answer, less than building the indexes in every training run)."
    ),
    "RECS_ANN_TREES": Setting(50, "Trees per Annoy index (more: better recall, bigger files)."),
    "RECS_KEEP_BUNDLES": Setting(3, "Model bundles kept on disk (the serving one is never pruned)."),
    "RECS_QUALITY_GATE_MARGIN": Setting(
        0.1, "Refuse to publish when NDCG@10 is this fraction below the serving model's (-1 = off)."
    ),
    "RECS_MIN_INTERACTIONS": Setting(
        3, "Distinct items a user needs to have some held out for evaluation."
    ),
    "RECS_EVAL_HOLDOUT": Setting(0.2, "Fraction of each user's latest distinct items held out."),
    "RECS_EVAL_MAX_USERS": Setting(5000, "Most users ranked in evaluation (a seeded sample above it)."),
    "RECS_TRAIN_CRON": Setting(
        None, "Crontab schedule of training (e.g. '0 3 * * *'); overrides RECS_TRAIN_INTERVAL.", types=(str,),
    ),
    "RECS_LEASE_TIMEOUT": Setting(
        30, "Seconds after its last heartbeat (every third of this) at which a training lease left by a "
        "dead process expires; its run row is then marked failed."
    ),
    "RECS_EMBEDDED_SCHEDULER": Setting(
        False, "Run the schedule inside the web process (development; one process via a file lock)."
    ),
    # plugins (docs/plugins.md)
    "RECS_TRAINER": Setting(
        "implicit", "Backend that fits the factor model: a `storefront_recs.trainers` plugin ('implicit' is built in)."
    ),
    "RECS_SOURCES": Setting(
        [], "Plugin candidate sources (`storefront_recs.sources`) each training run fits, by name; "
        "RECS_BLEND_GRID (default weights 0, 0.5, 1) and RECS_BLEND give them weights like the built-in ones.",
    ),
    # serving
    "RECS_BLEND": Setting(
        {"als": 1.0, "itemitem": 0.5, "popularity": 0.5},
        "For-you: weight of each candidate source (ALS on the visitor's vector, EASE on their "
        "items, item-item neighbours of what they just viewed, decayed popularity); see RECS_BLEND_AUTO.",
    ),
    "RECS_BLEND_AUTO": Setting(
        True,
        "Each training run picks this shop's for-you blend from RECS_BLEND_GRID by NDCG@10 on its "
        "own time split (RECS_BLEND wins ties), stores it in the bundle and serving uses it; "
        "False serves RECS_BLEND. An experiment variant that sets RECS_BLEND always uses its own.",
    ),
    "RECS_BLEND_GRID": Setting(
        {"als": [0.0, 1.0], "ease": [0.0, 1.0], "itemitem": [0.25, 0.5],
         "popularity": [0.0, 0.25, 0.5, 1.0, 2.0, 4.0]},
        "Weights tried per for-you source by RECS_BLEND_AUTO (every combination; EASE only where "
        "it is fitted).",
    ),
    "RECS_BLEND_NOISE_Z": Setting(
        2.0,
        "RECS_BLEND_AUTO leaves RECS_BLEND only for a blend whose validation gain exceeds this many "
        "standard errors of the per-user NDCG@10 differences (paired); 0 takes the best blend outright.",
    ),
    "RECS_EASE_MAX_ITEMS": Setting(
        10_000,
        "EASE (a closed-form item-item regression, one dense inverse) is fitted when at most this "
        "many items have interactions; above it the source is left out (its cost grows with the cube).",
    ),
    "RECS_EASE_LAMBDA": Setting(250.0, "L2 regularisation of EASE (chosen on a validation split of the quality benchmark)."),
    "RECS_EASE_K": Setting(200, "EASE weights kept per item for serving (the largest in magnitude)."),
    "RECS_SIMILAR_BLEND": Setting(
        {"itemitem": 1.0, "als": 0.5, "content": 0.3},
        "Similar items: weight of item-item, ALS and content neighbours.",
    ),
    "RECS_SESSION_MINUTES": Setting(30, "Events this recent count as the current session."),
    "RECS_SESSION_BOOST": Setting(2.0, "Weight multiplier of current-session events in for-you."),
    "RECS_BOOST_CATEGORIES": Setting({}, "Score multiplier per category (above 1 boosts, below 1 buries)."),
    "RECS_BOOST_ITEMS": Setting({}, "Score multiplier per item id (above 1 boosts, below 1 buries)."),
    "RECS_PINNED": Setting({}, "Widget kind -> item ids always shown first when available."),
    "RECS_MAX_PER_CATEGORY": Setting(
        {"for-you": 0.5, "trending": 0.5}, "Widget kind -> largest share of an answer from one category."
    ),
    "RECS_REPEAT_BUY_CATEGORIES": Setting(
        [], "Categories of repeat-buy goods: purchased items there may be recommended again."
    ),
    "RECS_CATALOG_REFRESH_SECONDS": Setting(
        1.0, "How often each worker polls the catalogue for stock and price changes."
    ),
    "RECS_DEFAULT_N": Setting(8, "Items per answer when the caller gives no n."),
    "RECS_MAX_N": Setting(100, "Largest n a caller may ask for."),
    # email blocks (storefront_recs/email)
    "RECS_EMAIL_BOUGHT_WINDOW_DAYS": Setting(
        90, "Email blocks leave out items the person bought within this many days."
    ),
    "RECS_EMAIL_RESEND_DAYS": Setting(
        28, "Email blocks leave out items already sent to the person in the same campaign this recently."
    ),
    "RECS_EMAIL_ATTRIBUTION_DAYS": Setting(
        7, "Purchases this many days after an email click are attributed to its campaign."
    ),
    "RECS_EMAIL_TOKEN_MAX_AGE": Setting(
        90 * 24 * 3600, "Seconds an email click link stays valid (later: an error page, no redirect)."
    ),
    "RECS_EMAIL_SUBSTITUTE_OUT_OF_STOCK": Setting(
        True, "A click on an item out of stock since sending goes to its best available similar item."
    ),
    "RECS_EMAIL_PRICE_FORMAT": Setting(
        "{:,.2f}", "Python format of prices in email blocks (e.g. '€{:,.2f}' or '{:.2f} EUR')."
    ),
    # imports
    "RECS_IMPORT_BATCH_SIZE": Setting(50_000, "Events written per transaction by import-events (catalogue imports use 1,000)."),
    # experiments and the admin dashboard (storefront_recs/experiments, web/admin.py)
    "RECS_EXPERIMENTS": Setting(
        [],
        "A/B tests declared in config: [{'key', 'name', 'variants': [{'name', 'percent', "
        "'overrides'}], 'widgets', 'start', 'end'}]; synced into recs_experiments on first use.",
    ),
    "RECS_ATTRIBUTION_WINDOW": Setting(
        7 * 24 * 3600, "Seconds after a recommendation click within which a cart or purchase is credited to it."
    ),
    "RECS_REVENUE_SOURCE": Setting(
        "auto",
        "Purchases counted as conversions and revenue (dashboard, experiments, email attribution): 'shop' "
        "(recs.track, imports), 'browser' (the snippet's, untrusted), 'all', or 'auto': the shop's when it "
        "sent any in the period, else the browser's.",
    ),
    "RECS_MAX_BROWSER_PURCHASE_VALUE": Setting(
        10_000.0, "Most revenue one browser-reported purchase line counts for (a browser can report anything)."
    ),
    "RECS_EXPERIMENT_MIN_VISITORS": Setting(
        200, "Visitors per variant below which experiment results carry a small-sample warning."
    ),
    "RECS_EXPERIMENT_CONFIDENCE": Setting(0.95, "Confidence level of intervals and significance tests."),
    "RECS_EXPERIMENT_REFRESH_SECONDS": Setting(
        2.0, "How often each worker re-reads the experiments (a pause shows within this time)."
    ),
    "RECS_ADMIN_CHECK": Setting(
        None,
        "Who may open /recs/admin/: a callable (or 'module:function') returning bool; "
        "@recs.admin_check wins. Default: nobody.", types=(str, Callable),
    ),
}


def validate(config: MutableMapping[str, Any]) -> None:
    """Check every ``RECS_*`` setting's type (None stands for "the default behaviour" where the
    default is None). A string given for a number, flag, list or mapping (an environment
    variable, say) is read as JSON. Raises :class:`ConfigurationError` naming the setting."""
    for key, setting in SETTINGS.items():
        value = config.get(key)
        if value is None and setting.default is None:
            continue
        accepted = setting.accepted()
        if isinstance(value, str) and str not in accepted:
            try:
                value = config[key] = json.loads(value)
            except ValueError:
                raise ConfigurationError(f"{key} must be {_names(accepted)}; got the text {value!r}") from None
        if isinstance(value, bool) and bool not in accepted or not isinstance(value, accepted):
            raise ConfigurationError(f"{key} must be {_names(accepted)}; got {type(value).__name__} {value!r}")


def _names(types: tuple[Any, ...]) -> str:
    names = {int: "a number", float: "a number", bool: "true or false", str: "a string", bytes: "bytes",
             list: "a list", tuple: "a list", Mapping: "a mapping", Callable: "a callable"}
    return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in types))


def apply_defaults(config: dict[str, Any]) -> None:
    """Fill in every missing ``RECS_*`` key (copies of mutable defaults)."""
    for key, setting in SETTINGS.items():
        default = setting.default
        if isinstance(default, (dict, list)):
            default = type(default)(default)
        config.setdefault(key, default)


# -- typed views of the settings -----------------------------------------------------------------
# The parts take their settings as small frozen dataclasses (``engine.fitting.ALSParams``,
# ``engine.data.MatrixConfig``, ``tracking.ingest.Limits``...). Their fields name the setting they
# hold with ``setting("RECS_...")``: the default comes from ``SETTINGS`` (one definition per
# setting) and ``from_settings`` fills an instance from a config.
_T = TypeVar("_T")
_SIMPLE = {"int": int, "float": float, "str": str, "bool": bool}


def setting(key: str, convert: Callable[[Any], Any] | None = None) -> Any:
    """A dataclass field holding ``key``: its default (converted) and where ``from_settings`` reads it."""
    default = SETTINGS[key].default
    metadata = {"setting": key, "convert": convert}
    if isinstance(default, dict | list):
        return field(default_factory=lambda: copy.deepcopy(convert(default) if convert else default),
                     metadata=metadata)
    return field(default=convert(default) if convert and default is not None else default, metadata=metadata)


def from_settings(cls: type[_T], config: Mapping[str, Any], **given: Any) -> _T:
    """``cls`` (a dataclass of ``setting`` fields) filled from ``config``; ``given`` fields as passed."""
    values = dict(given)
    for f in fields(cls):  # type: ignore[arg-type]
        key = f.metadata.get("setting")
        if key is None or f.name in values:
            continue
        value = config[key] if key in config else SETTINGS[key].default
        declared = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        convert = f.metadata["convert"] or _SIMPLE.get(declared)
        values[f.name] = convert(value) if convert is not None and value is not None else value
    missing = [f.name for f in fields(cls) if f.name not in values  # type: ignore[arg-type]
               and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise TypeError(f"{cls.__name__} needs {', '.join(missing)}")
    return cls(**values)


def reference_markdown() -> str:
    """The configuration reference (docs/configuration.md is this text; a test checks it)."""
    lines = [
        "# Configuration reference",
        "",
        "Every setting is a Flask config key; `Recs.init_app` fills in the defaults below.",
        "Generated by `python -m storefront_recs.config > docs/configuration.md`.",
        "",
        "| key | default | meaning |",
        "|---|---|---|",
    ]
    for key, setting in SETTINGS.items():
        default, meaning = (text.replace("|", r"\|") for text in (repr(setting.default), setting.help))
        lines.append(f"| `{key}` | `{default}` | {meaning} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
