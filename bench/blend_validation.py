"""Validation of for-you source variants, on the training run's own split of the benchmark's training data.

    .venv/bin/python bench/blend_validation.py [--data-dir ../shared/data] [--only NAME]

For each shared data set: the training events of ``bench/quality.py``'s time split are imported
through the public path (``import_events``), read back as the training run reads them
(``load_interactions`` with the committed defaults) and split as the training run splits them
(``holdout_split``: each user's latest 20% of items). The benchmark's test set is never read.
Models are fitted on the training part; each variant's per-source top lists are scored with
``blend_tuning.user_ndcg_of_blends`` (what ``RECS_BLEND_AUTO`` does in training). Prints
validation NDCG@10 and, for the gain of each row over the first, the paired z.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:] = [str(BENCH.parent)] + [p for p in sys.path if Path(p or ".").resolve() != BENCH] + [str(BENCH)]

import numpy as np  # noqa: E402
import quality  # noqa: E402
from _data import load_shared, shared_data_dir  # noqa: E402
from scipy import sparse  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402

from storefront_recs.config import SETTINGS  # noqa: E402
from storefront_recs.engine import blend_tuning as bt  # noqa: E402
from storefront_recs.engine import ease as ease_model  # noqa: E402
from storefront_recs.engine.data import MatrixConfig, holdout_split, load_interactions  # noqa: E402
from storefront_recs.engine.evaluate import holdout_users  # noqa: E402
from storefront_recs.engine.fitting import ALSParams, fit_als, fit_itemitem, fit_popularity  # noqa: E402

DEFAULTS = {k: s.default for k, s in SETTINGS.items()}


def sources_for(inter, train, test, users, wide: bool, ks: list[int]):  # type: ignore[no-untyped-def]
    """Every source variant this script compares, as ``blend_tuning.SourceLists``."""
    p = ALSParams.from_config(DEFAULTS)
    als = fit_als(train, p, iterations=max(p.iterations - p.refit_iterations, 1))
    out = {"als": bt.als_source(als.user_factors, als.item_factors, train, users)}
    # popularity: summed decayed strength (before), distinct visitors (binary training cells)
    out["pop"] = bt.popularity_source(np.asarray(train.sum(axis=0)).ravel(), train, users)
    binary = train.copy()
    binary.data[:] = 1.0
    out["pop_users"] = bt.popularity_source(np.asarray(binary.sum(axis=0)).ravel(), train, users)
    held = np.asarray(test[inter.users, inter.items]).ravel() > 0
    for days in (1.0, 3.0) if wide else ():  # recency-weighted popularity and trending
        sub = _subset(inter, ~held)
        out[f"trending{days:g}"] = bt.popularity_source(fit_popularity(sub, days).trending, train, users)
        age = float(sub.ts.max()) - sub.ts
        recent = np.bincount(sub.items, weights=sub.raw * np.exp2(-age / (days * 86400.0)), minlength=inter.n_items)
        out[f"recent{days:g}"] = bt.popularity_source(recent, train, users)
    seeds = bt.latest_items(inter.users, inter.items, inter.ts, train, users)
    out["itemitem"] = bt.itemitem_source(fit_itemitem(train, 50).similarity, seeds, train, users)
    # serving reads a visitor's latest RECENT_LIMIT events: EASE from those items only ("_last200")
    latest = bt.latest_items(inter.users, inter.items, inter.ts, train, users, n=200)
    r, c = zip(*[(row, i) for row, u in enumerate(users) for i in latest.get(int(u), [])], strict=True)
    recent_rows = sparse.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(len(users), train.shape[1]))
    if ease_model.fits(train, 10_000):
        for lam in (250.0, 500.0) if wide else (250.0,):
            b, active = ease_model.ease_weights(train, lam)
            for label in [str(k) for k in ks] + (["dense"] if wide else []):  # dense: every weight kept
                w = _kept(b, active, train.shape[1], len(active) if label == "dense" else int(label))
                out[f"ease{lam:g}_{label}"] = bt.ease_source(w, train, users)
                out[f"ease{lam:g}_{label}_last200"] = bt.sparse_source(recent_rows @ w, train[users])
                del w
            del b
    return out


def _kept(b, active, n, k):  # type: ignore[no-untyped-def]
    """``ease.fit_ease``'s sparse matrix from weights already fitted: each row's k largest |weights|."""
    kept = ease_model.top_k_abs(b, active, n, k)
    pos = np.full(n, -1)
    pos[active] = np.arange(len(active))
    kept.data = b[pos[np.repeat(np.arange(n), np.diff(kept.indptr))], pos[kept.indices]]
    return kept


def _subset(inter, mask):  # type: ignore[no-untyped-def]
    from dataclasses import replace
    return replace(inter, users=inter.users[mask], items=inter.items[mask], strength=inter.strength[mask],
                   raw=inter.raw[mask], decay=inter.decay[mask], ts=inter.ts[mask], types=inter.types[mask])


def blends(available: list[str]) -> list[dict[str, float]]:
    out: list[dict[str, float]] = [{"als": 1.0, "itemitem": 0.5, "pop": 0.5}]
    pops = [s for s in available if s.startswith(("pop", "trending", "recent"))]
    for p in pops:
        out.append({p: 1.0})
    for e in [s for s in available if s.startswith("ease")]:  # with the committed item-item/popularity
        out += [{e: 1.0}, {e: 1.0, "itemitem": 0.25}, {e: 1.0, "itemitem": 0.25, "pop": 0.25},
                {e: 1.0, "itemitem": 0.5, "pop": 0.25}, {e: 1.0, "itemitem": 0.25, "pop_users": 0.25},
                {e: 1.0, "itemitem": 0.5, "pop_users": 0.25}, {e: 1.0, "itemitem": 0.25, "pop_users": 0.5}]
    for p in pops:
        for w in (0.25, 0.5, 1.0, 2.0, 4.0):
            out.append({"als": 1.0, "itemitem": 0.25, p: w})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--only", action="append", default=[])
    parser.add_argument("--ease-k", default="200", help="EASE weights kept per item, comma-separated")
    parser.add_argument("--wide", action="store_true", help="also trending / recency-weighted popularity, EASE lambda 500, dense EASE rows")
    args = parser.parse_args()
    for ds in load_shared(shared_data_dir(args.data_dir)):
        if args.only and not any(o in ds.name for o in args.only):
            continue
        split = quality.make_split(ds)
        with quality.pipeline(split) as p:
            engine = create_engine(p.uri)
            inter = load_interactions(engine, MatrixConfig.from_config(DEFAULTS))
            engine.dispose()
        train, test = holdout_split(inter, DEFAULTS["RECS_EVAL_HOLDOUT"], DEFAULTS["RECS_MIN_INTERACTIONS"])
        users = holdout_users(test, DEFAULTS["RECS_EVAL_MAX_USERS"], DEFAULTS["RECS_TRAIN_SEED"])
        if len(users) > bt.MAX_USERS:
            users = np.sort(np.random.default_rng(0).choice(users, bt.MAX_USERS, replace=False))
        sources = sources_for(inter, train, test, users, args.wide, [int(k) for k in args.ease_k.split(",")])
        grid = blends(list(sources))
        per_user = bt.user_ndcg_of_blends(sources, test, users, grid)
        print(f"\n### {ds.name}: {len(users)} validation users\n\n| blend | NDCG@10 | z vs first |\n|---|---|---|")
        for blend, row in zip(grid, per_user, strict=True):
            z = bt.paired_z(row - per_user[0])
            print(f"| {blend} | {row.mean():.4f} | {z:+.2f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
