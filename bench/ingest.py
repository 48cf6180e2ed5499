"""Ingest benchmark: `flask recs import-events` on a generated CSV, and HTTP event posts.

    .venv/bin/python bench/ingest.py --events 1000000 [--postgres URL] [--http-seconds 20]

Prints one table: events per second for the CSV import (SQLite, and PostgreSQL when a URL is
given) and for POST /recs/api/v1/events through gunicorn (2 workers) on loopback.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parent.parent
TYPES = np.array(["view", "view", "view", "view", "add_to_cart", "purchase", "click"])


def write_events_csv(path: Path, n_events: int, n_users: int = 50_000, n_items: int = 100_000, seed: int = 1) -> None:
    """A synthetic log with Zipf-like item popularity, written in vectorised chunks."""
    rng = np.random.default_rng(seed)
    start = int((datetime.now(UTC) - timedelta(days=60)).timestamp())
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "type", "timestamp"])
        for offset in range(0, n_events, 200_000):
            size = min(200_000, n_events - offset)
            users = rng.integers(0, n_users, size)
            items = np.minimum(rng.zipf(1.3, size), n_items) - 1
            types = TYPES[rng.integers(0, len(TYPES), size)]
            stamps = start + rng.integers(0, 60 * 86_400, size)
            writer.writerows(zip((f"u{u}" for u in users), (f"sku-{i}" for i in items), types, stamps, strict=True))


def flask_env(uri: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        FLASK_APP="minimal_app:create_app",
        # This checkout's package first, not whichever one the venv has installed.
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "examples")]),
        RECS_DATABASE_URI=uri,
    )
    return env


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_import(uri: str, csv_path: Path) -> tuple[float, float]:
    """Seconds for a fresh database to import the file through the real CLI, and the CPU
    seconds of the CLI process (not the PostgreSQL server's): on a shared machine the CPU
    time moves much less than the wall time."""
    flask = str(Path(sys.executable).parent / "flask")
    env = flask_env(uri)
    subprocess.run([flask, "recs", "db", "upgrade"], env=env, check=True, capture_output=True)
    started, cpu = time.perf_counter(), children_cpu()
    done = subprocess.run([flask, "recs", "import-events", str(csv_path)], env=env, capture_output=True, text=True)
    elapsed, cpu = time.perf_counter() - started, children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"import failed: {done.stdout}\n{done.stderr}")
    print(f"  {done.stdout.strip()} (CLI process CPU {cpu:.1f} s, load average {os.getloadavg()[0]:.1f})",
          file=sys.stderr)
    return elapsed, cpu


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_ingest(uri: str, seconds: float, threads: int = 8, batch: int = 20) -> float:
    """Events per second posted in batches by ``threads`` clients to gunicorn (2 workers)."""
    port = free_port()
    env = flask_env(uri)
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    server = subprocess.Popen(
        [gunicorn, "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level", "warning",
         "minimal_app:create_app()"],
        env=env,
    )
    url = f"http://127.0.0.1:{port}/recs/api/v1/events"
    try:
        for _ in range(100):
            try:
                requests.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except requests.RequestException:
                time.sleep(0.2)
        counts = [0] * threads
        deadline = time.perf_counter() + seconds

        def client(slot: int) -> None:
            session = requests.Session()
            while time.perf_counter() < deadline:
                body = {"events": [{"event_id": str(uuid.uuid4()), "type": "view", "item_id": f"sku-{slot}-{i}"}
                                   for i in range(batch)]}
                response = session.post(url, data=json.dumps(body), headers={"Content-Type": "text/plain"}, timeout=10)
                counts[slot] += response.json()["accepted"]

        started = time.perf_counter()
        workers = [threading.Thread(target=client, args=(slot,)) for slot in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return sum(counts) / (time.perf_counter() - started)
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--postgres", help="SQLAlchemy URL of an empty PostgreSQL database")
    parser.add_argument("--http-seconds", type=float, default=20, help="0 skips the HTTP part")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="recs-bench-ingest-"))
    try:
        csv_path = work / "events.csv"
        write_events_csv(csv_path, args.events)
        rows = []
        targets = [("SQLite", f"sqlite:///{work / 'import.sqlite3'}")]
        if args.postgres:
            targets.append(("PostgreSQL", args.postgres))
        for name, uri in targets:
            seconds, _ = timed_import(uri, csv_path)
            rows.append((f"import-events, {args.events:,} rows", name, seconds, args.events / seconds))
        for name, uri in targets if args.http_seconds > 0 else []:
            http_uri = uri if name != "SQLite" else f"sqlite:///{work / 'http.sqlite3'}"
            if name == "SQLite":
                subprocess.run([str(Path(sys.executable).parent / "flask"), "recs", "db", "upgrade"],
                               env=flask_env(http_uri), check=True, capture_output=True)
            rate = http_ingest(http_uri, args.http_seconds)
            rows.append(("POST /recs/api/v1/events (gunicorn -w 2, 8 clients, 20/batch)", name, args.http_seconds, rate))
        print(f"\n{'what':<66} {'database':<11} {'seconds':>8} {'events/s':>10}")
        for what, database, seconds, rate in rows:
            print(f"{what:<66} {database:<11} {seconds:>8.1f} {rate:>10,.0f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
