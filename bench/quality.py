"""Quality benchmark: our default pipeline against four baselines, same split, same run.

    .venv/bin/python bench/quality.py [--data-dir ../shared/data] [--quick] [--tune] [--only NAME]

Protocol (for every data set in the shared data folder; skipped cleanly when absent, read in
place, never copied):

- implicit feedback: every rating / order line / behaviour is an interaction (Online Retail:
  cancellations, invoices starting with C, are dropped by the loader);
- time split: per user, distinct items ordered by first interaction time; the latest 20%
  (``max(1, floor(0.2 n))``, users with >= 2 items) are the test set, items first seen at
  the same moment (one basket) ordered by a seeded random draw; everything else trains;
- full-catalogue ranking (every item of the data set), each user's training items excluded,
  for every model; NDCG@10, Recall@10, Recall@20 (hits / min(|test|, k)), coverage (share of
  the catalogue in at least one top-10 list);
- baselines on the binary training matrix: popularity, raw ``implicit`` ALS with its defaults,
  ``implicit`` BM25 item-kNN (K=100), EASE (best of lambda 50/200/500 on the test set, which
  favours the baseline; skipped on Taobao: 45k+ items is too large for a dense inverse);
- ours, through the public path: the training events are written to a CSV
  (``user_id,item_id,type,timestamp,quantity``, original timestamps) and imported with
  ``import_events``, the catalogue is upserted (MovieLens titles and genres, Retail
  descriptions, Taobao category ids), ``recs.train()`` runs, and ``recs.for_you(user_id=...,
  n=20, exclude=<the user's training items>)`` answers for every test user. ``ours`` is the
  committed defaults (the training run picks the shop's for-you blend on its own time split,
  ``RECS_BLEND_AUTO``; the pick is printed); ``ours, no category cap`` the same with
  ``RECS_MAX_PER_CATEGORY={}``.

``--tune`` first carves a validation split out of the training events (the same rule applied
to them), grids fixed blends (``RECS_BLEND_AUTO`` off) and training settings on it (validation NDCG@10 only; the test set is
never looked at), prints the grid and the pick, then evaluates the pick on the test set.
``--pick JSON`` evaluates that overlay on the test set too, without tuning. ``--quick`` uses a
smaller grid and skips EASE.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

# bench/ goes last on the path, so that a benchmark can never shadow a stdlib module; the
# repository root goes first, for storefront_recs.
BENCH = Path(__file__).resolve().parent
sys.path[:] = [str(BENCH.parent)] + [p for p in sys.path if Path(p or ".").resolve() != BENCH] + [str(BENCH)]

import _baselines as base  # noqa: E402
import numpy as np  # noqa: E402
from _data import Dataset, load_shared, shared_data_dir  # noqa: E402
from flask import Flask  # noqa: E402
from scipy import sparse  # noqa: E402

from storefront_recs import Recs  # noqa: E402
from storefront_recs import db as dbmod  # noqa: E402
from storefront_recs.config import SETTINGS  # noqa: E402
from storefront_recs.tracking.importer import import_events  # noqa: E402

warnings.filterwarnings("ignore", module="implicit")  # BLAS-threads and COO->CSR notices

EASE_LAMBDAS = (50.0, 200.0, 500.0)
EASE_MAX_ITEMS = 20_000
BENCH_CONFIG: dict[str, Any] = {"RECS_QUALITY_GATE_MARGIN": -1}  # publish every run (no gate)


# -- data and split -----------------------------------------------------------------------------
@dataclass
class Split:
    """Integer-coded events of one data set with a train/test mask."""

    ds: Dataset
    users: np.ndarray
    items: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    train_mask: np.ndarray  # events that train
    test: dict[int, set[int]]  # user -> held-out items

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.user_ids), len(self.item_ids)

    def train_matrix(self) -> sparse.csr_matrix:
        m = self.train_mask
        return base.binary_matrix(self.users[m], self.items[m], self.shape)

    def test_users(self) -> np.ndarray:
        return np.array(sorted(self.test), dtype=np.int64)


def make_split(ds: Dataset, within: np.ndarray | None = None) -> Split:
    """The time split of ``ds`` (restricted to the events ``within``, for validation)."""
    user_ids, users = np.unique(ds.users.astype(str), return_inverse=True)
    catalogue = np.unique(np.concatenate([ds.items.astype(str), [str(it["id"]) for it in ds.catalog]]))
    items = np.searchsorted(catalogue, ds.items.astype(str))
    scope = np.ones(len(ds), dtype=bool) if within is None else within
    in_test = np.zeros(len(ds), dtype=bool)
    in_test[scope] = base.time_split(users[scope], items[scope], ds.ts[scope], len(user_ids), len(catalogue))
    test: dict[int, set[int]] = {}
    for u, i in zip(users[in_test], items[in_test], strict=True):
        test.setdefault(int(u), set()).add(int(i))
    return Split(ds, users, items, user_ids, catalogue, scope & ~in_test, test)


# -- our pipeline through its public path -------------------------------------------------------
class Pipeline:
    """A SQLite database with a split's training events imported; apps train and serve on it."""

    def __init__(self, split: Split, workdir: Path) -> None:
        self.split = split
        self.workdir = workdir
        self.uri = f"sqlite:///{workdir / 'recs.sqlite3'}"
        app, recs = self.app({})
        engine = app.extensions["storefront_recs"].engine
        dbmod.upgrade(engine)
        path = workdir / "events.csv"
        self._write_events(path)
        with app.app_context():
            state = app.extensions["storefront_recs"]
            report = import_events(engine, str(path), user_key=state.user_key,
                                   max_future=timedelta(seconds=app.config["RECS_MAX_FUTURE_SECONDS"]),
                                   batch_size=app.config["RECS_IMPORT_BATCH_SIZE"])
            if report.bad_count:
                raise SystemExit(f"{split.ds.name}: import rejected rows: {report.summary()}")
            recs.catalog.upsert(self._catalog())
        path.unlink()
        self.imported = report.stored
        engine.dispose()

    def app(self, config: dict[str, Any]) -> tuple[Flask, Recs]:
        app = Flask("quality", instance_path=str(self.workdir))
        app.config.update(SECRET_KEY="quality-bench", RECS_DATABASE_URI=self.uri,
                          RECS_MODEL_DIR=str(self.workdir / "models"), **BENCH_CONFIG, **config)
        return app, Recs(app)

    def _write_events(self, path: Path) -> None:
        ds, m = self.split.ds, self.split.train_mask
        with open(path, "w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(["user_id", "item_id", "type", "timestamp", "quantity"])
            for u, i, t, ts, q in zip(ds.users[m], ds.items[m], ds.types[m], ds.ts[m], ds.quantity[m], strict=True):
                out.writerow([u, i, t, repr(float(ts)), int(q)])

    def _catalog(self) -> list[dict[str, Any]]:
        items = []
        for it in self.split.ds.catalog:
            item = {"id": it["id"], "title": it.get("title") or None, "category": it.get("category")}
            genres = (it.get("attributes") or {}).get("genres")
            if genres:  # MovieLens: every genre, not only the first (which is the category)
                item["description"] = " ".join(genres)
            items.append(item)
        return items

    def train(self, config: dict[str, Any]) -> str:
        app, recs = self.app(config)
        with app.app_context():
            report = recs.train(trigger="quality-bench")
        app.extensions["storefront_recs"].engine.dispose()
        if not report.published:
            raise SystemExit(f"{self.split.ds.name}: training did not publish: {report.message}")
        with app.app_context():
            blend = recs.model_bundle().manifest.get("blend") or {}  # type: ignore[union-attr]
        how = (f"chosen on validation: NDCG@10 {blend['validation_ndcg@10']:.4f}, configured "
               f"{blend['configured_ndcg@10']:.4f}, paired gain z {blend.get('gain_z', 0):.2f}") if blend.get("chosen") else "the configured one"
        print(f"  {self.split.ds.name}: trained in {report.timings.get('total', 0):.1f} s; for-you blend "
              f"{blend.get('weights')} ({how})", file=sys.stderr)
        return str(report.version)

    def rank(self, config: dict[str, Any], version: str, n: int = base.K_MAX) -> dict[int, list[int]]:
        """``for_you`` (n=20, the user's training items excluded) for every test user; a larger
        ``n`` (a diagnostic: deeper candidate lists) keeps the first 20 of the answer."""
        app, recs = self.app(config)
        split = self.split
        train = split.train_matrix()
        index = {item: n for n, item in enumerate(split.item_ids)}
        lists: dict[int, list[int]] = {}
        with app.app_context():
            bundle = recs.model_bundle()
            if bundle is None or bundle.version != version:
                raise SystemExit(f"serving {bundle and bundle.version}, expected {version}")
            for u in split.test:
                seen = split.item_ids[train.indices[train.indptr[u]:train.indptr[u + 1]]]
                answer = recs.for_you(user_id=str(split.user_ids[u]), n=n, exclude=list(seen))
                lists[u] = [index[r.item_id] for r in answer[: base.K_MAX] if r.item_id in index]
        app.extensions["storefront_recs"].engine.dispose()
        return lists


@contextmanager
def pipeline(split: Split) -> Iterator[Pipeline]:
    workdir = Path(tempfile.mkdtemp(prefix="recs-quality-"))
    try:
        yield Pipeline(split, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def ours(split: Split, train_config: dict[str, Any], serve_configs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Metrics of our pipeline for one training config and several serving configs."""
    with pipeline(split) as p:
        version = p.train(train_config)
        return {label: base.score_lists(p.rank({**train_config, **cfg}, version), split.test, split.shape[1])
                for label, cfg in serve_configs.items()}


# -- baselines ----------------------------------------------------------------------------------
def baselines(split: Split, with_ease: bool) -> dict[str, dict[str, Any]]:
    train, users, n = split.train_matrix(), split.test_users(), split.shape[1]
    rows = {
        "popularity": base.score_lists(base.popularity(train, users), split.test, n),
        "implicit ALS (defaults)": base.score_lists(base.implicit_als(train, users), split.test, n),
        "implicit BM25 item-kNN (K=100)": base.score_lists(base.implicit_bm25(train, users), split.test, n),
    }
    if with_ease and n <= EASE_MAX_ITEMS:
        runs = {lam: base.score_lists(base.ease(train, users, lam), split.test, n) for lam in EASE_LAMBDAS}
        lam = max(runs, key=lambda k: runs[k]["ndcg@10"])
        rows[f"EASE (lambda={lam:g}, best of {'/'.join(f'{x:g}' for x in EASE_LAMBDAS)})"] = runs[lam]
    else:
        rows["EASE"] = {"skipped": "--quick" if not with_ease else f"{n:,} items: too many for a dense inverse"}
    return rows


# -- tuning on validation -----------------------------------------------------------------------
def default(key: str) -> Any:
    return SETTINGS[key].default


# Stage 1 varies the serving blend on one trained model; stage 2 varies training settings, one
# at a time, with the best blend. Each entry is a config overlay on the committed defaults.
BLEND_GRID = [
    {"als": 1.0, "itemitem": 1.0, "popularity": 0.2},
    {"als": 1.0, "itemitem": 0.0, "popularity": 0.2},
    {"als": 1.0, "itemitem": 0.0, "popularity": 0.5},
    {"als": 1.0, "itemitem": 0.0, "popularity": 1.0},
    {"als": 1.0, "itemitem": 0.25, "popularity": 1.0},
]
TRAIN_GRID: list[dict[str, Any]] = [
    {},
    {"RECS_ALS_ALPHA": 2.0},
    {"RECS_HALF_LIFE_DAYS": 0.0},
    {"RECS_ALS_FACTORS": 128},
]
# The grid compares fixed blends, one for all shops: each training run's own choice is off.
FIXED = {"RECS_BLEND_AUTO": False}
QUICK_BLENDS = BLEND_GRID[:4]
QUICK_TRAIN = TRAIN_GRID[:2]
VALIDATION_USERS = 200  # a seeded sample of users per data set keeps the grid in minutes


def label(config: dict[str, Any]) -> str:
    if not config:
        return "(committed defaults)"
    return ", ".join(f"{k.removeprefix('RECS_')}={v}" for k, v in config.items())


def validation_split(split: Split, max_users: int, seed: int = 0) -> Split:
    """Each user's latest 20% of their training items, for a seeded sample of users."""
    v = make_split(split.ds, within=split.train_mask)
    users = sorted(v.test)
    if len(users) > max_users:
        users = sorted(np.random.default_rng(seed).choice(users, max_users, replace=False).tolist())
    v.test = {u: v.test[u] for u in users}
    return v


def tune(splits: list[Split], quick: bool) -> dict[str, Any]:
    """Coordinate search on validation NDCG@10; returns the chosen config overlay."""
    vals = [validation_split(s, VALIDATION_USERS) for s in splits]
    names = [v.ds.name for v in vals]
    print("\n## Validation (each user's latest 20% of their training items; the test set is not used)\n")
    for v in vals:
        train, users = v.train_matrix(), v.test_users()
        pop = base.score_lists(base.popularity(train, users), v.test, v.shape[1])
        als = base.score_lists(base.implicit_als(train, users), v.test, v.shape[1])
        print(f"- {v.ds.name}: {len(v.test)} validation users; NDCG@10 of popularity {pop['ndcg@10']:.4f}, "
              f"implicit ALS {als['ndcg@10']:.4f}")

    def relative(results: dict[str, list[float]]) -> dict[str, float]:
        best = [max(r[j] for r in results.values()) for j in range(len(names))]
        return {k: float(np.mean([x / b if b else 0.0 for x, b in zip(r, best, strict=True)]))
                for k, r in results.items()}

    def table(results: dict[str, list[float]]) -> None:
        rel = relative(results)
        print("| config | " + " | ".join(names) + " | mean of NDCG / column best |")
        print("|---" * (len(names) + 2) + "|")
        for key, r in results.items():
            print(f"| {key} | " + " | ".join(f"{x:.4f}" for x in r) + f" | {rel[key]:.3f} |")

    no_cap = {"RECS_MAX_PER_CATEGORY": {}}
    with ExitStack() as stack:
        pipes = [stack.enter_context(pipeline(v)) for v in vals]
        blends = QUICK_BLENDS if quick else BLEND_GRID
        versions = [p.train({}) for p in pipes]
        stage1 = {f"BLEND={b}": [base.score_lists(p.rank({"RECS_BLEND": b, **FIXED, **no_cap}, ver), p.split.test,
                                                  p.split.shape[1])["ndcg@10"]
                                 for p, ver in zip(pipes, versions, strict=True)] for b in blends}
        print("\nStage 1: blend (committed training defaults, no category cap), validation NDCG@10\n")
        table(stage1)
        rel1 = relative(stage1)
        blend = blends[list(stage1).index(max(rel1, key=rel1.__getitem__))]
        print(f"\npicked blend: {blend}")
        serve = {"RECS_BLEND": blend, **FIXED, **no_cap}
        grid = QUICK_TRAIN if quick else TRAIN_GRID
        stage2: dict[str, list[float]] = {}
        for g in grid:
            t0 = time.perf_counter()
            stage2[label(g)] = [base.score_lists(p.rank({**g, **serve}, p.train(g)), p.split.test,
                                                 p.split.shape[1])["ndcg@10"] for p in pipes]
            print(f"  {label(g)}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        print(f"\nStage 2: training settings, one at a time (blend {blend}, no category cap), "
              "validation NDCG@10\n")
        table(stage2)
        rel2 = relative(stage2)
        chosen_train = grid[list(stage2).index(max(rel2, key=rel2.__getitem__))]
        cap = [base.score_lists(p.rank({**chosen_train, "RECS_BLEND": blend, **FIXED}, p.train(chosen_train)),
                                p.split.test, p.split.shape[1])["ndcg@10"] for p in pipes]
    print(f"\nthe pick with the committed category cap {default('RECS_MAX_PER_CATEGORY')}: "
          + ", ".join(f"{n} {x:.4f}" for n, x in zip(names, cap, strict=True)))
    chosen = {"RECS_BLEND": blend, **FIXED, **chosen_train}
    print(f"\nchosen: {chosen}\n")
    return chosen


# -- report -------------------------------------------------------------------------------------
def print_table(name: str, split: Split, rows: dict[str, dict[str, Any]]) -> None:
    n_users, n_items = split.shape
    n_test = sum(len(t) for t in split.test.values())
    print(f"\n### {name}: {int(split.train_mask.sum()):,} training events, {n_users:,} users "
          f"({len(split.test):,} test users, {n_test:,} test items), {n_items:,} items\n")
    print("| model | NDCG@10 | Recall@10 | Recall@20 | coverage |")
    print("|---|---|---|---|---|")
    scored = {k: r for k, r in rows.items() if "ndcg@10" in r}
    best = max((r for k, r in scored.items() if not k.startswith("ours")), key=lambda r: r["ndcg@10"], default=None)
    for key, r in rows.items():
        if "skipped" in r:
            print(f"| {key} | skipped ({r['skipped']}) | | | |")
            continue
        mark = ""
        if key.startswith("ours") and best is not None and best["ndcg@10"]:
            gap, se = base.paired_gap(r["ndcg_per_user"], best["ndcg_per_user"])
            mark = (f" ({(r['ndcg@10'] / best['ndcg@10'] - 1) * 100:+.0f}% vs best baseline; "
                    f"paired gap {gap:+.4f} +- {se:.4f} SE, z {gap / se if se else 0:+.1f})")
        print(f"| {key} | {r['ndcg@10']:.4f}{mark} | {r['recall@10']:.4f} | {r['recall@20']:.4f} | {r['coverage']:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="shared data folder (default ../shared/data)")
    parser.add_argument("--quick", action="store_true", help="smaller tuning grid, no EASE")
    parser.add_argument("--tune", action="store_true", help="grid the defaults on a validation split first")
    parser.add_argument("--pick", default=None,
                        help="JSON config overlay also evaluated on the test set (e.g. a --tune result)")
    parser.add_argument("--only", action="append", default=[], help="only data sets whose name contains this")
    args = parser.parse_args()
    directory = shared_data_dir(args.data_dir)
    datasets = list(load_shared(directory)) if directory.is_dir() else []
    datasets = [d for d in datasets if not args.only or any(o in d.name for o in args.only)]
    if not datasets:
        print(f"(no shared data sets under {directory}: skipped)")
        return
    t_start = time.perf_counter()
    splits = [make_split(ds) for ds in datasets]
    pick: dict[str, Any] | None = json.loads(args.pick) if args.pick else None
    if args.tune:
        pick = tune(splits, args.quick)
    print("\n## Test (each user's latest 20% of distinct items, full-catalogue ranking)")
    for split in splits:
        t0 = time.perf_counter()
        rows = baselines(split, with_ease=not args.quick)
        rows.update(ours(split, {}, {"ours (committed defaults)": {},
                                     "ours (committed defaults, no category cap)": {"RECS_MAX_PER_CATEGORY": {}}}))
        if pick is not None:
            rows.update(ours(split, pick, {f"ours (validation pick: {label(pick)})": {}}))
        print_table(split.ds.name, split, rows)
        print(f"  {split.ds.name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    print(f"\n(total {time.perf_counter() - t_start:.0f} s)")


if __name__ == "__main__":
    main()
