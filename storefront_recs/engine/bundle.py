"""Versioned model bundles on disk: write, validate, publish by pointer, prune (serving loads
them: ``serving/model.py``).

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
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from scipy import sparse

from .ann import build_annoy
from .fitting import ContentModel, Popularity

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


def load_csr(path: str) -> sparse.csr_matrix:
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


# -- the store ----------------------------------------------------------------------------------
class BundleStore:
    """The bundles in one model directory, as training writes them: stage, publish, switch
    ``CURRENT``, prune. Serving reads them through ``serving.model.ServingStore``."""

    def __init__(self, model_dir: str, *, ann_mode: str | None = None) -> None:
        self.model_dir = model_dir
        self.ann_mode = ann_mode if ann_mode in ANN_MODES else None

    def pointer(self) -> str | None:
        """The version ``CURRENT`` names, or None."""
        try:
            with open(os.path.join(self.model_dir, POINTER)) as handle:
                return handle.read().strip() or None
        except FileNotFoundError:
            return None

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


def file_mtime(path: str) -> int | None:
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
