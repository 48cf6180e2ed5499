"""Email batch export benchmark: users per second of ``flask recs email-blocks``.

    .venv/bin/python bench/email_export.py [--users 2000] [--events 200000] [--workers N] [--postgres URL]

Loads a generated shop (``_data.synthetic``: taste clusters, Zipf-like popularity) into a fresh
database, trains a model, then runs the real CLI command (progress bar, JSON Lines file, sends
recorded) for ``--users`` people: three quarters with history, a quarter new. Runs the
campaign twice, so the second run also applies "already sent in this campaign". Prints one
row per run: users, seconds, users/second. The issue's target is at least 200 users/second.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from _data import insert_dataset, synthetic  # noqa: E402
from flask import Flask  # noqa: E402

from storefront_recs import Recs  # noqa: E402
from storefront_recs import db as dbmod  # noqa: E402


def make_shop(uri: str, folder: Path, events: int) -> Flask:
    app = Flask("bench_email", instance_path=str(folder))
    app.config.update(SECRET_KEY="bench", RECS_DATABASE_URI=uri, RECS_MODEL_DIR=str(folder / "models"),
                      RECS_PUBLIC_URL="https://shop.example", RECS_HASH_USER_IDS=False,  # _data stores raw ids
                      RECS_ALS_FACTORS=32, RECS_ALS_ITERATIONS=6)
    recs = Recs(app)
    state = app.extensions["storefront_recs"]
    dbmod.upgrade(state.engine)
    data = synthetic(n_events=events, n_users=events // 20, n_items=max(events // 40, 100))
    insert_dataset(state.engine, data)
    recs.catalog.upsert([{"id": item["id"], "url": f"/p/{item['id']}", "image_url": f"/img/{item['id']}.jpg",
                          "price": 5.0 + i % 50} for i, item in enumerate(data.catalog)])
    report = recs.train()
    print(f"shop: {events} events, {len(data.catalog)} items, model {report.version}", file=sys.stderr)
    return app


def run(app: Flask, folder: Path, users: int, label: str, workers: int | None) -> tuple[str, int, float]:
    ids = [f"user-{i}" for i in range(users * 3 // 4)] + [f"new-{i}" for i in range(users - users * 3 // 4)]
    users_file, out = folder / "users.txt", folder / f"{label}.jsonl"
    users_file.write_text("\n".join(ids) + "\n")
    runner = app.test_cli_runner()
    start = time.perf_counter()
    result = runner.invoke(args=["recs", "email-blocks", "--users", str(users_file), "--campaign", "bench",
                                 "--out", str(out), "-n", "4", "--utm", "source=newsletter",
                                 *(["--workers", str(workers)] if workers else [])])
    elapsed = time.perf_counter() - start
    if result.exit_code != 0:
        raise SystemExit(result.output)
    lines = out.read_text().splitlines()
    assert len(lines) == users and all(len(json.loads(line)["items"]) == 4 for line in lines[:50])
    return label, users, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: the command's)")
    parser.add_argument("--postgres", help="also run on this PostgreSQL URL (an empty database)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_email_") as tmp:
        targets = [("sqlite", f"sqlite:///{tmp}/recs.sqlite3")]
        if args.postgres:
            targets.append(("postgresql", args.postgres))
        for name, uri in targets:
            folder = Path(tmp) / name
            folder.mkdir()
            app = make_shop(uri, folder, args.events)
            for run_no in (1, 2):
                label, users, seconds = run(app, folder, args.users, f"{name}-run{run_no}", args.workers)
                rows.append((label, users, seconds, users / seconds))
            app.extensions["storefront_recs"].engine.dispose()
    print(f"{'run':<18} {'users':>7} {'seconds':>8} {'users/s':>8}")
    for label, users, seconds, rate in rows:
        print(f"{label:<18} {users:>7} {seconds:>8.2f} {rate:>8.0f}")
    print(f"(cpu count {os.cpu_count()}; target >= 200 users/s)")


if __name__ == "__main__":
    main()
