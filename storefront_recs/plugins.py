"""The plugin API: candidate sources, factor-model trainers and feed importers, found through
entry points (see docs/plugins.md).

A plugin is a distribution that declares, in its pyproject.toml::

    [project.entry-points."storefront_recs.sources"]
    cooccur = "my_package:CooccurrenceSource"

The core loads each group once per process. A plugin that fails to import or does not fit
its protocol is recorded in :func:`plugin_status` (shown by ``flask recs plugins`` and
``/recs/health``) and left out; it never breaks the shop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from scipy import sparse

log = logging.getLogger(__name__)

SOURCES = "storefront_recs.sources"
TRAINERS = "storefront_recs.trainers"
IMPORTERS = "storefront_recs.importers"
GROUPS = (SOURCES, TRAINERS, IMPORTERS)


@runtime_checkable
class Source(Protocol):
    """A candidate source, with implicit's verbs and ``(ids, scores)`` shapes.

    Item and user numbers are the core's vocabularies (rows and columns of ``user_items``):
    the bundle keeps the ids, the source keeps only numbers.
    """

    name: ClassVar[str]  # its key in RECS_SOURCES, RECS_BLEND, RECS_BLEND_GRID and the manifest
    reason: ClassVar[str]  # what a for-you pick from it says, e.g. "picked for your taste"

    def __init__(self, options: Mapping[str, Any]) -> None: ...

    def fit(self, user_items: sparse.csr_matrix) -> None:
        """Learn from the weighted users x items matrix (time-decayed interactions)."""

    def recommend(self, user_items: sparse.csr_matrix, N: int) -> tuple[np.ndarray, np.ndarray]:
        """Best ``N`` items for each row of ``user_items`` (profiles: a trained user's row, or
        a visitor's live events as weights), best first: two ``rows x N`` arrays, item numbers
        (-1 pads) and scores (higher is better). Items in the profile may be returned: the core
        leaves them out."""

    def similar_items(self, itemid: int, N: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``N`` items most like ``itemid``, best first (it may include itself)."""

    def save(self, directory: str) -> None:
        """Write the fitted state into ``directory`` (empty, private to this source)."""

    @classmethod
    def load(cls, directory: str, options: Mapping[str, Any]) -> Source:
        """The fitted source that ``save`` wrote (files are never changed after saving)."""


class FactorModel(Protocol):
    user_factors: np.ndarray
    item_factors: np.ndarray


@runtime_checkable
class Trainer(Protocol):
    """The backend that fits the implicit-feedback factor model (``RECS_TRAINER``)."""

    name: ClassVar[str]

    def __init__(self, options: Mapping[str, Any]) -> None: ...

    def fit(self, user_items: sparse.csr_matrix, params: Any, *, warm_start: FactorModel | None = None,
            iterations: int | None = None) -> FactorModel:
        """Fit on ``user_items`` with ``params`` (``engine.fitting.ALSParams``: factors,
        regularization, alpha, iterations, seed); ``warm_start`` continues from its factors."""

    def describe(self) -> dict[str, Any]:
        """What the manifest records about this backend (name, version, where it ran)."""


@runtime_checkable
class Importer(Protocol):
    """A catalogue or event feed for ``flask recs import-catalog/import-events --importer NAME``."""

    name: ClassVar[str]
    kind: ClassVar[str]  # "catalog" or "events"

    def __init__(self, options: Mapping[str, Any]) -> None: ...

    def read(self, location: str) -> Iterable[Mapping[str, Any]]:
        """Records in the shape of the CSV/JSONL imports (catalogue fields, or event rows)."""


_PROTOCOLS: dict[str, type] = {SOURCES: Source, TRAINERS: Trainer, IMPORTERS: Importer}


@dataclass
class PluginInfo:
    group: str
    name: str
    value: str
    distribution: str | None
    version: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class _Group:
    loaded: dict[str, Any] = field(default_factory=dict)
    info: list[PluginInfo] = field(default_factory=list)


_cache: dict[str, _Group] = {}
_lock = threading.Lock()


def _load(group: str) -> _Group:
    found = _Group()
    seen: set[str] = set()
    for point in sorted(entry_points(group=group), key=lambda p: p.name):
        if point.name in seen:  # the same distribution on sys.path twice
            continue
        seen.add(point.name)
        info = PluginInfo(group, point.name, point.value, *_distribution(point))
        try:
            obj = point.load()
            missing = _missing(obj, _PROTOCOLS[group])
            if missing:
                raise TypeError(f"{point.value} lacks {', '.join(missing)}")
            if getattr(obj, "name", point.name) != point.name:
                raise TypeError(f"{point.value}.name is {obj.name!r}, not the entry point's {point.name!r}")
            found.loaded[point.name] = obj
        except Exception as exc:  # a broken plugin is reported, never fatal
            info.error = f"{type(exc).__name__}: {exc}"
            log.warning("storefront-recs: plugin %s %r failed to load: %s", group, point.name, info.error)
        found.info.append(info)
    return found


def _distribution(point: EntryPoint) -> tuple[str | None, str | None]:
    dist = point.dist
    return (None, None) if dist is None else (dist.metadata["Name"], dist.version)


def _missing(obj: Any, protocol: type) -> list[str]:
    wanted = [n for n in vars(protocol) if not n.startswith("_")] + list(getattr(protocol, "__annotations__", {}))
    return sorted({n for n in wanted if not hasattr(obj, n)})


def _group(group: str) -> _Group:
    with _lock:
        if group not in _cache:
            _cache[group] = _load(group)
        return _cache[group]


def plugins(group: str) -> dict[str, Any]:
    """The loaded plugins of ``group`` by name (classes, as their entry points name them)."""
    return dict(_group(group).loaded)


def plugin(group: str, name: str) -> Any:
    """One plugin; a clear error when it is not installed or failed to load."""
    found = _group(group)
    if name in found.loaded:
        return found.loaded[name]
    failed = next((i for i in found.info if i.name == name), None)
    if failed is not None:
        raise LookupError(f"the {group} plugin {name!r} failed to load: {failed.error}")
    known = ", ".join(sorted(found.loaded)) or "none"
    raise LookupError(f"no {group} plugin named {name!r} is installed (installed: {known})")


def plugin_status() -> list[PluginInfo]:
    """Every plugin entry point of every group, loaded or failed."""
    return [info for group in GROUPS for info in _group(group).info]


def forget_loaded_plugins() -> None:
    """Look the entry points up again on next use (after installing a plugin at run time)."""
    with _lock:
        _cache.clear()
