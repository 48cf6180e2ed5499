"""Versioned model bundles on disk: write, validate, load, publish by pointer, prune.

Layout of ``RECS_MODEL_DIR``::

    CURRENT                      the serving version's name (replaced atomically, os.replace)
    20261128-190031-123456/      one directory per training run, never modified once published
        manifest.json            version, created_at, data range, counts, params, metrics, files
        item_ids.json user_ids.json
        als_item_factors.npy als_user_factors.npy itemitem.npz bought_together.npz
        content.npz content_item_ids.json popularity.npz
        ease.npz ease_user_items.npz   (only when the run fitted EASE)
        als_dot.ann als_angular.ann content.ann   (Annoy mode only; mmapped by every worker)
    .staging-<version>/          a run being written (renamed into place when complete)

Files are never overwritten: a new run writes a new directory and switches ``CURRENT``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from implicit.nearest_neighbours import ItemItemRecommender
from scipy import sparse
from threadpoolctl import threadpool_limits

from . import ease as ease_model
from .ann import NormOrderedIndex, annoy_query, build_annoy, exact_query, load_annoy, row_norms
from .fitting import ContentModel, Popularity
from .plugin_sources import load_sources

log = logging.getLogger(__name__)

FORMAT = 1
POINTER = "CURRENT"
MANIFEST = "manifest.json"
STAGING_PREFIX = ".staging-"
ANN_MODES = ("exact", "annoy")


class BundleError(Exception):
    """A bundle is missing, incomplete, corrupt or does not match its manifest."""


def new_version(now: datetime | None = None) -> str:
    """A sortable, unique version name: UTC time to the microsecond."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%d-%H%M%S-%f")


def sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


# -- writing ------------------------------------------------------------------------------------
@dataclass
class BundleParts:
    """Everything a training run produces, before it is written."""

    item_ids: list[str]
    user_ids: list[str]
    user_factors: np.ndarray
    item_factors: np.ndarray
    itemitem: sparse.csr_matrix
    bought_together: sparse.csr_matrix
    content: ContentModel
    popularity: Popularity
    ease: sparse.csr_matrix | None = None  # EASE weights, top k per row (None: not fitted)
    ease_user_items: sparse.csr_matrix | None = None  # users x items trained on (its pattern), for EASE


def _save_csr(path: str, m: sparse.csr_matrix) -> None:
    with open(path, "wb") as handle:
        np.savez(handle, data=m.data.astype(np.float32), indices=m.indices, indptr=m.indptr,
                 shape=np.array(m.shape, dtype=np.int64))


def _load_csr(path: str) -> sparse.csr_matrix:
    with np.load(path, allow_pickle=False) as z:
        return sparse.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))


def _save_json(path: str, data: Any) -> None:
    with open(path, "w") as handle:  # one dumps: json.dump encodes in pure Python, piece by piece
        handle.write(json.dumps(data, separators=(",", ":")))


def _save_npy(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, np.ascontiguousarray(array, dtype=np.float32))


def write_parts(directory: str, parts: BundleParts, *, ann_mode: str, trees: int, seed: int) -> None:
    """Write the data files of a bundle into ``directory`` (Annoy indexes in Annoy mode)."""
    j = lambda name: os.path.join(directory, name)  # noqa: E731
    _save_json(j("item_ids.json"), parts.item_ids)
    _save_json(j("user_ids.json"), parts.user_ids)
    _save_npy(j("als_item_factors.npy"), parts.item_factors)
    _save_npy(j("als_user_factors.npy"), parts.user_factors)
    _save_csr(j("itemitem.npz"), parts.itemitem)
    _save_csr(j("bought_together.npz"), parts.bought_together)
    if parts.ease is not None:
        _save_csr(j("ease.npz"), parts.ease)
    if parts.ease_user_items is not None:
        _save_csr(j("ease_user_items.npz"), parts.ease_user_items)
    c = parts.content
    with open(j("content.npz"), "wb") as handle:
        np.savez(handle, features=c.features, idf=c.idf, components=c.components, vectors=c.vectors)
    _save_json(j("content_item_ids.json"), c.item_ids)
    p = parts.popularity
    with open(j("popularity.npz"), "wb") as handle:
        np.savez(handle, popularity=p.popularity, trending=p.trending, by_hour=p.by_hour,
                 by_weekday=p.by_weekday)
    if ann_mode == "annoy":
        build_annoy(parts.item_factors, "angular", trees, seed, j("als_angular.ann"))
        build_annoy(c.vectors, "angular", trees, seed, j("content.ann"))


# -- reading ------------------------------------------------------------------------------------
def read_manifest(directory: str) -> dict[str, Any]:
    try:
        with open(os.path.join(directory, MANIFEST)) as handle:
            manifest = json.load(handle)
    except (OSError, ValueError) as exc:
        raise BundleError(f"unreadable manifest in {directory}: {exc}") from exc
    if not isinstance(manifest, dict):
        raise BundleError(f"manifest in {directory} is not an object")
    return manifest


def validate(directory: str) -> dict[str, Any]:
    """The manifest, after checking format, version, every file's size and sha256."""
    manifest = read_manifest(directory)
    for key in ("version", "created_at", "metrics", "files", "format"):
        if key not in manifest:
            raise BundleError(f"manifest in {directory} lacks {key!r}")
    if manifest["format"] != FORMAT:
        raise BundleError(f"bundle format {manifest['format']} is not {FORMAT}")
    if manifest["version"] != os.path.basename(os.path.normpath(directory)):
        raise BundleError(f"manifest version {manifest['version']} does not match {directory}")
    sizes = manifest.get("sizes", {})
    for name, digest in manifest["files"].items():
        path = os.path.join(directory, name)
        inside = not os.path.isabs(name) and ".." not in name.split("/")  # plugin sources use a subfolder
        if not inside or not os.path.isfile(path):
            raise BundleError(f"bundle {manifest['version']} lacks {name}")
        if name in sizes and os.path.getsize(path) != sizes[name]:
            raise BundleError(f"{name} in bundle {manifest['version']} is truncated or changed")
        if sha256(path) != digest:
            raise BundleError(f"checksum of {name} in bundle {manifest['version']} does not match")
    return manifest


class ModelBundle:
    """A published bundle, read-only, with implicit-style ``(ids, scores)`` verbs over item indexes."""

    def __init__(self, directory: str, *, ann_mode: str | None = None,
                 plugin_options: Mapping[str, Any] | None = None) -> None:
        self.path = directory
        self.manifest = validate(directory)
        m = self.manifest
        self.version: str = m["version"]
        self.created_at: datetime = datetime.fromisoformat(m["created_at"])
        self.metrics: dict[str, float] = m["metrics"]
        j = lambda name: os.path.join(directory, name)  # noqa: E731
        self.item_ids: list[str] = _load_json(j("item_ids.json"))
        self.user_ids: list[str] = _load_json(j("user_ids.json"))
        self.item_index = {item: i for i, item in enumerate(self.item_ids)}
        self.user_index = {user: i for i, user in enumerate(self.user_ids)}
        self.item_factors: np.ndarray = np.load(j("als_item_factors.npy"))
        self.user_factors: np.ndarray = np.load(j("als_user_factors.npy"), mmap_mode="r")
        params = m.get("params", {}).get("als", {})
        with threadpool_limits(1, "blas"):
            self.als = AlternatingLeastSquares(
                factors=self.item_factors.shape[1], regularization=params.get("regularization", 0.05),
                alpha=params.get("alpha", 1.0), num_threads=1,
            )
        self.als.item_factors, self.als.user_factors = self.item_factors, self.user_factors
        self._item_norms = row_norms(self.item_factors)
        self.itemitem = ItemItemRecommender(num_threads=1)
        self.itemitem.similarity = _load_csr(j("itemitem.npz"))
        self.bought_together_matrix = _load_csr(j("bought_together.npz"))
        self.ease = _load_csr(j("ease.npz")) if "ease.npz" in m["files"] else ease_model.empty(len(self.item_ids))
        self.ease_user_items = _load_csr(j("ease_user_items.npz")) if "ease_user_items.npz" in m["files"] else None
        blend = m.get("blend") or {}
        # the for-you blend the training run chose for this shop (None: it did not choose)
        self.blend: dict[str, float] | None = dict(blend["weights"]) if blend.get("chosen") else None
        with np.load(j("content.npz"), allow_pickle=False) as z:
            self.content = ContentModel(_load_json(j("content_item_ids.json")), z["features"], z["idf"],
                                        z["components"], z["vectors"])
        self.content_index = {item: i for i, item in enumerate(self.content.item_ids)}
        self._content_ids = np.array(self.content.item_ids, dtype=object)
        with np.load(j("popularity.npz"), allow_pickle=False) as z:
            self.popularity: np.ndarray = z["popularity"]
            self.trending: np.ndarray = z["trending"]
            self.popularity_by_hour: np.ndarray = z["by_hour"]
            self.popularity_by_weekday: np.ndarray = z["by_weekday"]
        self._check_shapes()
        # candidate sources from plugins, by name (a source whose plugin is gone is left out)
        self.plugin_sources = load_sources(directory, m, plugin_options or {})
        self.ann_mode = ann_mode or m.get("ann_mode", "exact")
        if self.ann_mode == "annoy" and "als_angular.ann" not in m["files"]:
            self.ann_mode = "exact"  # built without Annoy indexes
        if self.ann_mode == "annoy":
            dims = self.item_factors.shape[1]
            self._ann_angular = load_annoy(j("als_angular.ann"), dims, "angular")
            self._ann_content = load_annoy(j("content.ann"), self.content.vectors.shape[1], "angular")

    def _check_shapes(self) -> None:
        n_items, n_users = len(self.item_ids), len(self.user_ids)
        checks = {
            "item factors": self.item_factors.shape[0] == n_items,
            "user factors": self.user_factors.shape[0] == n_users,
            "item-item": self.itemitem.similarity.shape == (n_items, n_items),
            "bought together": self.bought_together_matrix.shape == (n_items, n_items),
            "ease": self.ease.shape == (n_items, n_items),
            "ease users": self.ease_user_items is None or self.ease_user_items.shape[0] == n_users,
            "content vectors": self.content.vectors.shape[0] == len(self.content.item_ids),
            "popularity": self.popularity.shape == (n_items,) and self.trending.shape == (n_items,),
            "hourly popularity": self.popularity_by_hour.shape == (24, n_items),
            "weekday popularity": self.popularity_by_weekday.shape == (7, n_items),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise BundleError(f"bundle {self.version}: shapes do not match the vocabularies: {bad}")

    def __repr__(self) -> str:
        return f"<ModelBundle {self.version} items={len(self.item_ids)} users={len(self.user_ids)}>"

    # -- ALS ------------------------------------------------------------------------------------
    def recommend_user(
        self, user_idx: int, n: int, filter_items: np.ndarray | list[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` items for a known user by dot product of factors, minus ``filter_items``."""
        return self.recommend_vector(self.user_factors[user_idx], n, filter_items)

    def recommend_vector(
        self, user_vector: np.ndarray, n: int, filter_items: np.ndarray | list[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` items for a user vector (from ``fold_in``), minus ``filter_items``."""
        exclude = () if filter_items is None else filter_items
        # Exact in every mode: on ALS factors the norm-ordered scan beat Annoy's dot index at
        # every recall and catalogue size measured (bench/ann.py, docs/benchmarks.md).
        return self._exact_dot.query(user_vector, n, exclude)

    @cached_property
    def _exact_dot(self) -> NormOrderedIndex:
        return NormOrderedIndex(self.item_factors)

    def fold_in(self, item_idxs: np.ndarray | list[int], weights: np.ndarray | list[float]) -> np.ndarray:
        """A user vector from interactions (implicit's ``recalculate_user``), for any visitor."""
        idx = np.asarray(item_idxs, dtype=np.int32)
        w = np.asarray(weights, dtype=np.float32)
        # Built from CSR arrays directly: going through COO costs more than the solve itself.
        row = sparse.csr_matrix((w, idx, np.array([0, len(idx)], np.int32)), shape=(1, len(self.item_ids)))
        row.sum_duplicates()
        return np.asarray(self.als.recalculate_user(0, row), dtype=np.float32)

    def similar_als(self, item_idx: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Items closest to ``item_idx`` by cosine of ALS factors (the item itself excluded)."""
        if self.ann_mode == "annoy":
            return annoy_query(self._ann_angular, self.item_factors[item_idx], n, "angular", [item_idx])
        query = self.item_factors[item_idx] / self._item_norms[item_idx]
        return exact_query(self.item_factors, query, n, norms=self._item_norms, exclude=[item_idx])

    def recommend_ease(self, item_idxs: list[int], n: int, filter_items: list[int] | None = None,
                       user_idx: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` items by EASE for a visitor with these items (and not ``filter_items``); a
        user the model knows (``user_idx``) also with every item they had in training: serving
        reads only a visitor's latest events, and EASE, unlike the ALS user factors, has no
        summary of the rest (on the quality benchmark's validation split the whole history
        ranked better than the latest 200 events, bench/blend_validation.py)."""
        items = np.unique(np.asarray(item_idxs, dtype=np.int64))
        known = self.ease_user_items
        if user_idx is not None and known is not None and user_idx < known.shape[0]:
            items = np.union1d(items, known.indices[known.indptr[user_idx] : known.indptr[user_idx + 1]])
        if not self.ease.nnz or not len(items):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        scores = ease_model.user_scores(self.ease, items)
        candidates = np.flatnonzero(scores > 0)
        if filter_items:
            candidates = candidates[~np.isin(candidates, filter_items)]
        top = candidates[np.argsort(-scores[candidates], kind="stable")[:n]]
        return top.astype(np.int64), scores[top].astype(np.float32)

    # -- item-item, bought together -------------------------------------------------------------
    def similar_itemitem(self, item_idx: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine item-item neighbours from co-interactions (implicit's ``similar_items``)."""
        ids, scores = self.itemitem.similar_items(item_idx, N=n, filter_items=np.array([item_idx]))
        return np.asarray(ids, dtype=np.int64), np.asarray(scores, dtype=np.float32)

    def bought_together(self, item_idx: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Items carted or bought in the same session or order, best first."""
        m = self.bought_together_matrix
        start, end = m.indptr[item_idx], m.indptr[item_idx + 1]
        ids, scores = m.indices[start:end], m.data[start:end]
        order = np.argsort(-scores, kind="stable")[:n]
        return ids[order].astype(np.int64), scores[order].astype(np.float32)

    # -- content --------------------------------------------------------------------------------
    def content_vector(self, item: dict[str, Any]) -> np.ndarray:
        """The content vector of any item dict (title, description, category, attributes)."""
        return self.content.embed([item])[0]

    def similar_content(self, item_id: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Catalogue items (ids) closest in content to ``item_id`` (itself excluded)."""
        row = self.content_index.get(item_id)
        if row is None:
            return np.zeros(0, dtype=object), np.zeros(0, np.float32)
        return self._content_search(self.content.vectors[row], n, [row])

    def similar_content_vector(self, vec: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Catalogue items (ids) closest to a content vector."""
        return self._content_search(vec, n, [])

    def _content_search(self, vec: np.ndarray, n: int, exclude: list[int]) -> tuple[np.ndarray, np.ndarray]:
        if not len(self.content.item_ids) or not np.any(vec):
            return np.zeros(0, dtype=object), np.zeros(0, np.float32)
        if self.ann_mode == "annoy":
            rows, scores = annoy_query(self._ann_content, vec, n, "angular", exclude)
        else:
            rows, scores = exact_query(self.content.vectors, vec, n, exclude=exclude)
        return self._content_ids[rows], scores


def _load_json(path: str) -> Any:
    with open(path) as handle:
        return json.load(handle)


# -- the store ----------------------------------------------------------------------------------
class BundleStore:
    """The bundles in one model directory; ``current()`` is what every worker serves."""

    def __init__(self, model_dir: str, *, ann_mode: str | None = None, check_interval: float = 1.0,
                 plugin_options: Mapping[str, Any] | None = None) -> None:
        self.model_dir = model_dir
        self.plugin_options = dict(plugin_options or {})
        self.ann_mode = ann_mode if ann_mode in ANN_MODES else None
        self.check_interval = check_interval
        self._bundle: ModelBundle | None = None
        self._checked_at = -1e9
        self._failed: tuple[str, int | None] | None = None  # a refused version and its manifest's mtime
        self._load_lock = threading.Lock()

    # -- reading side ---------------------------------------------------------------------------
    def pointer(self) -> str | None:
        """The version ``CURRENT`` names, or None."""
        try:
            with open(os.path.join(self.model_dir, POINTER)) as handle:
                return handle.read().strip() or None
        except FileNotFoundError:
            return None

    def current(self) -> ModelBundle | None:
        """The serving bundle; re-checks the pointer at most once per ``check_interval`` seconds.

        A bundle that fails validation is logged and skipped: the previous one keeps serving.
        Only one thread loads; the others keep answering from the previous bundle meanwhile.
        """
        now = time.monotonic()
        if now - self._checked_at < self.check_interval:
            return self._bundle
        if not self._load_lock.acquire(blocking=self._bundle is None):
            return self._bundle
        try:
            if time.monotonic() - self._checked_at >= self.check_interval:
                self._refresh()
                self._checked_at = time.monotonic()
        finally:
            self._load_lock.release()
        return self._bundle

    def _refresh(self) -> None:
        version = self.pointer()
        if version is None:
            return
        if self._bundle is not None and self._bundle.version == version:
            return
        # a refused bundle is tried again once its manifest changes (an erasure rewrote it)
        stamp = (version, _mtime(os.path.join(self.model_dir, version, MANIFEST)))
        if stamp == self._failed:
            return
        try:
            self._bundle = ModelBundle(os.path.join(self.model_dir, version), ann_mode=self.ann_mode,
                                       plugin_options=self.plugin_options)
            self._failed = None
        except Exception as exc:  # keep serving the previous bundle, whatever went wrong
            log.error("storefront-recs: refusing model bundle %s: %s", version, exc)
            self._failed = stamp

    def load(self, version: str) -> ModelBundle:
        """Load and validate one bundle (raises :class:`BundleError`)."""
        return ModelBundle(os.path.join(self.model_dir, version), ann_mode=self.ann_mode,
                                       plugin_options=self.plugin_options)

    def serving_manifest(self) -> dict[str, Any] | None:
        """The manifest of the version ``CURRENT`` names, if it is readable."""
        version = self.pointer()
        if version is None:
            return None
        try:
            return read_manifest(os.path.join(self.model_dir, version))
        except BundleError:
            return None

    def versions(self) -> list[str]:
        """Complete bundle directories, oldest first."""
        if not os.path.isdir(self.model_dir):
            return []
        return sorted(
            name for name in os.listdir(self.model_dir)
            if not name.startswith(".") and os.path.isfile(os.path.join(self.model_dir, name, MANIFEST))
        )

    # -- writing side ---------------------------------------------------------------------------
    def stage(self, version: str) -> str:
        """A fresh private directory to write a run's files into."""
        path = os.path.join(self.model_dir, STAGING_PREFIX + version)
        os.makedirs(path)
        return path

    def publish(self, staging: str, manifest: dict[str, Any], *, activate: bool = True) -> str:
        """Checksum the staged files, write the manifest, move the directory into place and,
        with ``activate``, switch ``CURRENT`` to it. Returns the bundle's directory."""
        version = manifest["version"]
        names = sorted(os.path.relpath(os.path.join(root, n), staging)
                       for root, _, found in os.walk(staging) for n in found if n != MANIFEST or root != staging)
        with ThreadPoolExecutor(2, thread_name_prefix="recs-checksum") as pool:  # hashlib releases the GIL
            files = dict(zip(names, pool.map(sha256, [os.path.join(staging, n) for n in names]), strict=True))
        sizes = {name: os.path.getsize(os.path.join(staging, name)) for name in names}
        full = {"format": FORMAT, **manifest, "files": files, "sizes": sizes}
        with open(os.path.join(staging, MANIFEST), "w") as handle:
            json.dump(full, handle, indent=2, sort_keys=True, default=str)
        _fsync_dir_files(staging)
        final = os.path.join(self.model_dir, version)
        os.rename(staging, final)
        if activate:
            self.activate(version)
        return final

    def activate(self, version: str) -> None:
        """Point ``CURRENT`` at ``version`` atomically (readers see the old or the new name)."""
        tmp = os.path.join(self.model_dir, f".{POINTER}.{os.getpid()}.{uuid.uuid4().hex[:8]}")
        with open(tmp, "w") as handle:
            handle.write(version + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, os.path.join(self.model_dir, POINTER))

    def prune(self, keep: int) -> list[str]:
        """Delete all but the newest ``keep`` bundles (never the serving one); returns the deleted.

        Deleting is safe for workers still mapping an old Annoy file: on POSIX the mapping
        outlives the directory entry.
        """
        serving = self.pointer()
        versions = self.versions()
        doomed = [v for v in versions[: max(len(versions) - max(keep, 1), 0)] if v != serving]
        for version in doomed:
            shutil.rmtree(os.path.join(self.model_dir, version), ignore_errors=True)
        return doomed

    def discard(self, staging: str) -> None:
        """Remove a staging directory of a failed run."""
        shutil.rmtree(staging, ignore_errors=True)


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _fsync_dir_files(directory: str) -> None:
    for name in os.listdir(directory):
        fd = os.open(os.path.join(directory, name), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
