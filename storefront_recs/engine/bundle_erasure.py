"""Erasure in the model bundles on disk: the serving bundle and the retained previous ones.

A bundle holds people in three files: ``user_ids.json`` (their keys, ``anon:<id>`` for an
anonymous visitor), ``als_user_factors.npy`` (a row each) and, when EASE was fitted,
``ease_user_items.npz`` (a row each). :func:`erase_from_bundles` writes those files again without
the erased keys' rows. Nothing is overwritten in place (a worker may have them mmapped): each new
file is written beside the old one and swapped in with ``os.replace``, the data files first and
the manifest, with their new sha256 and sizes, last. A worker that loads the bundle during the
swap refuses it and tries again once the manifest changed (``BundleStore``).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from .bundle import (
    MANIFEST,
    BundleStore,
    _save_csr,
    _save_json,
    _save_npy,
    load_csr,
    read_manifest,
    sha256,
)

log = logging.getLogger(__name__)
LOCK_FILE = ".erasure.lock"
USER_FILES = ("user_ids.json", "als_user_factors.npy", "ease_user_items.npz")


@contextmanager
def _rewrite_lock(model_dir: str) -> Iterator[None]:
    """One erasure rewrites bundles at a time (across processes), so none undoes another's."""
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, LOCK_FILE), "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def erase_from_bundle(directory: str, user_keys: Collection[str]) -> int:
    """Rewrite one bundle without ``user_keys``; returns how many user rows were removed."""
    keys = set(user_keys)
    manifest = read_manifest(directory)
    j = lambda name: os.path.join(directory, name)  # noqa: E731
    with open(j("user_ids.json")) as handle:
        user_ids: list[str] = json.load(handle)
    keep = np.array([user not in keys for user in user_ids], dtype=bool)
    removed = int((~keep).sum())
    if not removed:
        return 0
    tag = f".erasing-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    written: dict[str, str] = {}  # final name -> temporary name
    try:
        written["user_ids.json"] = j("user_ids.json" + tag)
        _save_json(written["user_ids.json"], [u for u, kept in zip(user_ids, keep, strict=True) if kept])
        factors = np.load(j("als_user_factors.npy"), mmap_mode="r")
        written["als_user_factors.npy"] = j("als_user_factors.npy" + tag)
        _save_npy(written["als_user_factors.npy"], np.asarray(factors[keep]))
        del factors
        if "ease_user_items.npz" in manifest.get("files", {}):
            written["ease_user_items.npz"] = j("ease_user_items.npz" + tag)
            _save_csr(written["ease_user_items.npz"], load_csr(j("ease_user_items.npz"))[keep])
        files, sizes = dict(manifest.get("files", {})), dict(manifest.get("sizes", {}))
        for name, path in written.items():
            files[name], sizes[name] = sha256(path), os.path.getsize(path)
            _fsync(path)
        counts = dict(manifest.get("counts") or {})
        if "users" in counts:
            counts["users"] = int(counts["users"]) - removed
        new_manifest = {**manifest, "files": files, "sizes": sizes, "counts": counts,
                        "erased_user_rows": int(manifest.get("erased_user_rows", 0)) + removed}
        manifest_tmp = j(MANIFEST + tag)
        with open(manifest_tmp, "w") as handle:
            json.dump(new_manifest, handle, indent=2, sort_keys=True, default=str)
        _fsync(manifest_tmp)
        for name, path in written.items():
            os.replace(path, j(name))
        os.replace(manifest_tmp, j(MANIFEST))
    finally:
        for path in [*written.values(), j(MANIFEST + tag)]:
            if os.path.exists(path):
                os.unlink(path)
    return removed


def erase_from_bundles(store: BundleStore, user_keys: Collection[str]) -> dict[str, Any]:
    """Rewrite every bundle on disk without ``user_keys`` (model keys: user keys and
    ``anon:<id>``); returns what the erasure receipt says about them."""
    rewritten: list[str] = []
    failed: list[str] = []
    checked = 0
    with _rewrite_lock(store.model_dir):
        for version in store.versions():
            try:
                removed = erase_from_bundle(os.path.join(store.model_dir, version), user_keys)
            except FileNotFoundError:
                continue  # pruned by a training run meanwhile: nothing left to erase
            except Exception as exc:
                log.error("storefront-recs: could not erase from model bundle %s: %s", version, exc)
                failed.append(version)
                continue
            checked += 1
            if removed:
                rewritten.append(version)
    return {"checked": checked, "rewritten": rewritten, "failed": failed}


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
