"""Candidate sources from plugins (``storefront_recs.sources``) in a training run and a bundle.

Each enabled source is fitted twice, like ALS: on the time split, so the blend choice scores
its lists on the held-out items, and on the full matrix for the published bundle, where it
saves its files under ``source-<name>/`` and the manifest records it under ``sources``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import sparse

from ..plugins import SOURCES, Source, plugin
from .blend_tuning import SourceLists, normalise_rows

DIRECTORY_PREFIX = "source-"


def source_classes(names: Sequence[str]) -> dict[str, type[Source]]:
    """The enabled sources' classes; a missing or broken one fails the run with its reason."""
    return {name: plugin(SOURCES, name) for name in names}


def fit_sources(classes: Mapping[str, type[Source]], user_items: sparse.csr_matrix,
                options: Mapping[str, Any]) -> dict[str, Source]:
    fitted = {}
    for name, cls in classes.items():
        source = cls(options)
        source.fit(user_items)
        fitted[name] = source
    return fitted


def profile_lists(source: Source, profiles: sparse.csr_matrix, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """A source's top ``depth`` per profile row without the profile's own items, -1 padded."""
    ids, scores = source.recommend(profiles, depth + int(np.diff(profiles.indptr).max(initial=0)))
    ids = np.asarray(ids, dtype=np.int64).reshape(profiles.shape[0], -1)
    scores = np.asarray(scores, dtype=np.float32).reshape(ids.shape)
    seen = np.zeros(ids.shape, dtype=bool)
    for row in range(profiles.shape[0]):
        own = profiles.indices[profiles.indptr[row]:profiles.indptr[row + 1]]
        seen[row] = np.isin(ids[row], own)
    valid = (ids >= 0) & ~seen & np.isfinite(scores) & (scores > 0)
    order = np.argsort(~valid, axis=1, kind="stable")[:, :depth]  # valid ones first, order kept
    ids = np.where(np.take_along_axis(valid, order, 1), np.take_along_axis(ids, order, 1), -1)
    scores = np.where(ids >= 0, np.take_along_axis(scores, order, 1), 0.0).astype(np.float32)
    if ids.shape[1] < depth:
        pad = depth - ids.shape[1]
        ids = np.hstack([ids, np.full((len(ids), pad), -1, np.int64)])
        scores = np.hstack([scores, np.zeros((len(scores), pad), np.float32)])
    return ids, scores


def validation_lists(sources: Mapping[str, Source], train: sparse.csr_matrix, users: np.ndarray,
                     depth: int) -> dict[str, SourceLists]:
    """Each source's lists for the blend choice's users, from their training rows."""
    out = {}
    for name, source in sources.items():
        ids, scores = profile_lists(source, train[users], depth)
        out[name] = SourceLists(ids, normalise_rows(scores))
    return out


def save_sources(sources: Mapping[str, Source], staging: str) -> dict[str, dict[str, Any]]:
    """Save each fitted source into the staged bundle; returns the manifest's ``sources``."""
    described = {}
    for name, source in sources.items():
        directory = os.path.join(staging, DIRECTORY_PREFIX + name)
        os.makedirs(directory)
        source.save(directory)
        described[name] = {"directory": DIRECTORY_PREFIX + name, "reason": type(source).reason,
                           "class": f"{type(source).__module__}.{type(source).__qualname__}"}
    return described
