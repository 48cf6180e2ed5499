"""Training benchmark: each pipeline stage, our ALS vs raw ``implicit``, whole pipeline, peak memory.

    .venv/bin/python bench/train.py [--events 1000000] [--data-dir ../shared/data] [--postgres URL]

For a generated shop of ``--events`` events and for each data set found in the shared data
folder (skipped cleanly when absent; read in place, never copied), it loads the events into a
fresh database, runs ``recs.train()`` (database -> published bundle), then fits raw
``implicit.cpu.als.AlternatingLeastSquares`` with the same parameters on the same full matrix,
and our ``fit_als`` wrapper on it too; ``--runs`` times (default 3), interleaved, and takes the
best of each (a shared machine's speed drifts by 10-40% from minute to minute). It prints one
table with the stage timings of the best run, the ratios (target: ALS fit <= 1.1 x raw,
pipeline <= 1.5 x raw at 1M events), peak RSS above the baseline during the pipeline, and
NDCG@10 of the model and of popularity. Besides best pipeline / best raw fit, ``paired`` is the
median of each run's own pipeline / raw fit ratio: the two run back to back, so a drift of the
machine's speed moves both, where the best of each can pair a slow minute with a fast one.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The repository root goes first on sys.path, for storefront_recs; bench/ itself stays off it.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

import argparse  # noqa: E402
import gc  # noqa: E402
import importlib.util  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import psutil  # noqa: E402
from flask import Flask  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from storefront_recs import Recs  # noqa: E402
from storefront_recs import db as dbmod  # noqa: E402
from storefront_recs.engine.data import MatrixConfig, load_interactions  # noqa: E402
from storefront_recs.engine.fitting import ALSParams, als_model, fit_als  # noqa: E402
from storefront_recs.engine.train import STAGES  # noqa: E402  (blend and ease included)

_spec = importlib.util.spec_from_file_location("recs_bench_data", HERE / "_data.py")
assert _spec is not None and _spec.loader is not None
_data = importlib.util.module_from_spec(_spec)
sys.modules["recs_bench_data"] = _data
_spec.loader.exec_module(_data)
Dataset, insert_dataset, load_shared = _data.Dataset, _data.insert_dataset, _data.load_shared
shared_data_dir, synthetic = _data.shared_data_dir, _data.synthetic



class PeakRSS:
    """Samples this process's RSS every 20 ms in a thread; ``peak`` is the maximum seen."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.base = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def make_app(uri: str, workdir: Path, config: dict[str, Any]) -> tuple[Flask, Recs]:
    app = Flask("bench", instance_path=str(workdir))
    app.config.update(SECRET_KEY="bench", RECS_DATABASE_URI=uri, RECS_MODEL_DIR=str(workdir / "models"), **config)
    recs = Recs(app)
    dbmod.upgrade(app.extensions["storefront_recs"].engine)
    return app, recs


def bench_one(ds: Dataset, uri: str, workdir: Path, config: dict[str, Any], runs: int = 3) -> dict[str, Any]:
    app, recs = make_app(uri, workdir, config)
    engine = app.extensions["storefront_recs"].engine
    t0 = time.perf_counter()
    insert_dataset(engine, ds)
    insert_s = time.perf_counter() - t0
    params = ALSParams.from_config(app.config)
    reports, peaks, raw_times, our_times = [], [], [], []
    matrix = None
    for _ in range(runs):  # interleaved, best of each: the box may be busy with other work
        gc.collect()
        with PeakRSS() as mem, app.app_context():
            report = recs.train(trigger="bench")
        if not report.published:
            raise SystemExit(f"{ds.name}: training did not publish: {report.status} {report.message}")
        reports.append(report)
        peaks.append((mem.peak - mem.base) / 2**20)
        if matrix is None:  # the same full matrix, fitted by raw implicit and by our wrapper
            matrix = load_interactions(engine, MatrixConfig.from_config(app.config)).matrix()
        with threadpool_limits(1, "blas"):
            raw_model = als_model(params)
            t0 = time.perf_counter()
            raw_model.fit(matrix, show_progress=False)
            raw_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        fit_als(matrix, params)
        our_times.append(time.perf_counter() - t0)
    best = min(reports, key=lambda r: r.timings["total"])
    engine.dispose()
    return {
        "name": ds.name, "events": len(ds), "users": best.counts["users"], "items": best.counts["items"],
        "insert_s": insert_s, "timings": best.timings, "raw_s": min(raw_times), "ours_s": min(our_times),
        "peak_mb": max(peaks), "metrics": best.metrics,
        "runs": [(r.timings["total"], raw) for r, raw in zip(reports, raw_times, strict=True)],
    }


def paired_ratio(runs: list[tuple[float, float]]) -> float:
    """The median of each run's pipeline / raw fit (the two measured back to back)."""
    return float(statistics.median(total / raw for total, raw in runs))


def print_table(rows: list[dict[str, Any]], backend: str) -> None:
    head = ["data set", "events", "users", "items", *STAGES, "pipeline", "raw fit",
            "fit/raw", "ALS stage/raw", "pipeline/raw", "paired", "peak MB", "NDCG@10", "pop NDCG@10"]
    print(f"\nbackend: {backend}   (seconds unless noted; fit = our fit_als wrapper on the full matrix)\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        t = r["timings"]
        cells = [r["name"], f"{r['events']:,}", f"{r['users']:,}", f"{r['items']:,}",
                 *(f"{t.get(s, 0):.2f}" for s in STAGES), f"{t['total']:.2f}", f"{r['raw_s']:.2f}",
                 f"{r['ours_s'] / r['raw_s']:.2f}", f"{t['als'] / r['raw_s']:.2f}",
                 f"{t['total'] / r['raw_s']:.2f}", f"{paired_ratio(r['runs']):.2f}", f"{r['peak_mb']:.0f}",
                 f"{r['metrics']['ndcg@10']:.4f}", f"{r['metrics']['popularity_ndcg@10']:.4f}"]
        print("| " + " | ".join(cells) + " |")
    for r in rows:
        print(f"{r['name']}: each run's pipeline / raw fit: "
              + ", ".join(f"{total:.2f} / {raw:.2f} = {total / raw:.2f}" for total, raw in r["runs"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="generated events (0 = skip)")
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--data-dir", default=None, help="shared data folder (default ../shared/data)")
    parser.add_argument("--postgres", default=None, help="also run on this PostgreSQL URL (an empty database)")
    parser.add_argument("--no-shared", action="store_true", help="skip the shared data sets")
    parser.add_argument("--runs", type=int, default=3, help="pipeline and raw fit runs per data set (best of)")
    args = parser.parse_args()
    config: dict[str, Any] = {"RECS_QUALITY_GATE_MARGIN": -1}
    datasets: list[Dataset] = []
    if args.events:
        datasets.append(synthetic(args.events, args.users, args.items))
    if not args.no_shared:
        directory = shared_data_dir(args.data_dir)
        found = list(load_shared(directory)) if directory.is_dir() else []
        if not found:
            print(f"(no shared data sets under {directory}: skipped)")
        datasets += found
    backends = [("sqlite", None)] + ([("postgresql", args.postgres)] if args.postgres else [])
    print(f"cores: {os.cpu_count()}, ALS: factors={ALSParams().factors} iterations={ALSParams().iterations} "
          f"refit={ALSParams().refit_iterations} (defaults unless overridden)")
    for backend, url in backends:
        rows = []
        for ds in datasets:
            workdir = Path(tempfile.mkdtemp(prefix="recs-bench-"))
            try:
                uri = url or f"sqlite:///{workdir / 'recs.sqlite3'}"
                if url:
                    _reset_postgres(url)
                rows.append(bench_one(ds, uri, workdir, config, max(1, args.runs)))
                print(f"  {ds.name} on {backend}: done", file=sys.stderr)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        if rows:
            print_table(rows, backend)


def _reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


if __name__ == "__main__":
    main()
