"""Serving benchmark: gunicorn (2 workers) on loopback, wrk as the load tool.

    .venv/bin/python bench/serve.py [--items 100000] [--events 1000000] [--seconds 15]

Builds a shop with a generated catalogue and event log, trains it, then measures in one run the
throughput, p50/p99 latency and worker CPU per request of similar items, for-you (visitors with events newer than the
model, so every answer folds them in) and a bare Flask JSON endpoint on the same server; the
time from a posted product view to a changed for-you answer; and Annoy against exact top-k on
the trained factors (recall@10 and time per query). Needs `wrk` (apt-get install wrk).

With ``--in-process`` it measures instead, in one process with Flask's test client, the CPU per
request of the same endpoints on the same shop (two apps standing for the two workers): a
profile-friendly view of the workers' cost that load on a shared machine disturbs less.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "examples"))

from ingest import write_events_csv  # noqa: E402


def shop_env(work: Path) -> dict[str, str]:
    return {"RECS_DATABASE_URI": f"sqlite:///{work / 'shop.sqlite3'}", "RECS_MODEL_DIR": str(work / "models")}


def build_shop(work: Path, n_items: int, n_events: int) -> dict[str, str]:
    """Database, catalogue, events and a trained bundle; returns the env for the server."""
    from minimal_app import create_app

    from storefront_recs import db as dbmod
    from storefront_recs.tracking.importer import import_events

    env = shop_env(work)
    app = create_app(dict(env))
    state = app.extensions["storefront_recs"]
    dbmod.upgrade(state.engine)
    rng = random.Random(5)
    categories = [f"cat-{c}" for c in range(50)]
    started = time.perf_counter()
    batch = []
    for i in range(n_items):
        category = categories[i % len(categories)]
        batch.append({"id": f"sku-{i}", "title": f"{category} item {i} {rng.choice(['red', 'blue', 'big', 'small'])}",
                      "url": f"/p/sku-{i}", "price": round(rng.uniform(1, 100), 2), "category": category})
        if len(batch) == 5000:
            state.recs.catalog.upsert(batch)
            batch = []
    if batch:
        state.recs.catalog.upsert(batch)
    csv_path = work / "events.csv"
    write_events_csv(csv_path, n_events, n_items=n_items)
    with app.app_context():
        import_events(state.engine, str(csv_path), state.user_key, timedelta(seconds=300))
    print(f"  catalogue + {n_events:,} events loaded in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    started = time.perf_counter()
    report = state.recs.train()
    print(f"  trained {report.version} in {time.perf_counter() - started:.0f} s: {report.metrics}", file=sys.stderr)
    state.engine.dispose()
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server_env = {**os.environ, **env, "PYTHONPATH": f"{ROOT / 'bench'}:{ROOT / 'examples'}"}
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    process = subprocess.Popen(
        [gunicorn, "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level", "warning", "serve_app:create_app()"],
        env=server_env,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            requests.get(base + "/bare", timeout=5)
            break
        except requests.RequestException:
            time.sleep(0.2)
    else:
        process.terminate()
        raise SystemExit("gunicorn did not answer")
    # Warm both workers: model bundle and catalogue cache load on the first request of each.
    for _ in range(20):
        requests.get(base + "/recs/api/v1/similar/sku-1?n=8", timeout=60)
        requests.get(base + "/recs/api/v1/for-you?n=8", timeout=60)
    return process, base


def make_visitors(base: str, count: int, n_items: int) -> list[str]:
    """Anonymous visitors who each viewed a few items after the model was trained."""
    cookies = []
    session = requests.Session()
    for _ in range(count):
        session.cookies.clear()
        events = [{"event_id": str(uuid.uuid4()), "type": "view", "item_id": f"sku-{min(int(random.paretovariate(1.2)), n_items) - 1}"}
                  for _ in range(3)]
        session.post(base + "/recs/api/v1/events", data=json.dumps({"events": events}),
                     headers={"Content-Type": "text/plain"}, timeout=10)
        cookies.append(session.cookies["recs_aid"])
    return cookies


WRK_SCRIPT = """
local paths = {%s}
local cookies = {%s}
local counter = 0
request = function()
  counter = counter + 1
  local path = paths[(counter %% #paths) + 1]
  local headers = {}
  if #cookies > 0 then headers["Cookie"] = "recs_aid=" .. cookies[(counter %% #cookies) + 1] end
  return wrk.format("GET", path, headers)
end
"""


def workers_cpu(server: subprocess.Popen) -> float:
    """CPU seconds the gunicorn workers have used so far."""
    total = 0.0
    for worker in psutil.Process(server.pid).children():
        times = worker.cpu_times()
        total += times.user + times.system
    return total


def run_wrk(base: str, paths: list[str], cookies: list[str], seconds: float, work: Path,
            server: subprocess.Popen, connections: int = 16) -> dict[str, float]:
    script = work / f"wrk-{uuid.uuid4().hex[:6]}.lua"
    script.write_text(WRK_SCRIPT % (",".join(json.dumps(p) for p in paths), ",".join(json.dumps(c) for c in cookies)))
    cpu_before = workers_cpu(server)
    try:
        out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", str(script),
                              base], capture_output=True, text=True, check=True).stdout
    finally:
        script.unlink()  # a kept --shop directory would collect one per run
    cpu = workers_cpu(server) - cpu_before
    def latency(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not match:
            raise SystemExit(f"cannot read {label}% from wrk:\n{out}")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"wrk saw errors:\n{out}")
    requests_done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50": latency("50"), "p99": latency("99"), "cpu_ms": cpu / max(requests_done, 1) * 1000}


def event_to_change(base: str, trials: int, n_items: int) -> list[float]:
    """Seconds from posting a product view to receiving a for-you answer that reflects it."""
    times = []
    for trial in range(trials):
        session = requests.Session()
        before = session.get(base + "/recs/api/v1/for-you?n=8", timeout=10).json()["items"]
        item = f"sku-{(trial * 7919) % n_items}"
        started = time.perf_counter()
        session.post(base + "/recs/api/v1/events", data=json.dumps({"event_id": str(uuid.uuid4()), "type": "view",
                                                                    "item_id": item}),
                     headers={"Content-Type": "text/plain"}, timeout=10)
        while True:
            after = session.get(base + "/recs/api/v1/for-you?n=8", timeout=10).json()["items"]
            if [i["id"] for i in after] != [i["id"] for i in before]:
                break
            if time.perf_counter() - started > 5:
                break
        times.append(time.perf_counter() - started)
    return times


def ann_vs_exact(model_dir: str, queries: int = 500) -> list[tuple[str, float, float]]:
    """Recall@10 against exact search and milliseconds per query, on the trained ALS factors."""
    from storefront_recs.serving.model import ServingStore

    rows = []
    store = ServingStore(model_dir)
    version = store.pointer()
    assert version
    exact = store.load(version)
    rng = np.random.default_rng(1)
    users = rng.integers(0, len(exact.user_ids), queries)
    truth = []
    started = time.perf_counter()
    for u in users:
        truth.append(set(exact.recommend_vector(np.asarray(exact.user_factors[u]), 10)[0].tolist()))
    rows.append(("exact", 1.0, (time.perf_counter() - started) / queries * 1000))
    annoy = ServingStore(model_dir, ann_mode="annoy").load(version)
    if annoy.ann_mode == "annoy":
        started = time.perf_counter()
        hits = 0
        for u, expected in zip(users, truth, strict=True):
            hits += len(expected & set(annoy.recommend_vector(np.asarray(annoy.user_factors[u]), 10)[0].tolist()))
        rows.append(("annoy", hits / (10 * queries), (time.perf_counter() - started) / queries * 1000))
    return rows


def in_process(env: dict[str, str], visitors: int, n_items: int, repeats: int = 3) -> None:
    """CPU per request inside one process (Flask's test client, no gunicorn or wrk): two apps on
    the shop stand for the two workers, so each visitor's first for-you answer is computed once
    in each, as under gunicorn. process_time counts only this process, so other load on the
    machine disturbs it less than req/s (the test client's own work is included for every row)."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT / "bench"))
    from serve_app import create_app

    apps = [create_app(), create_app()]
    clients = [app.test_client() for app in apps]
    for client in clients:  # model bundle and catalogue cache load on the first request
        client.get("/recs/api/v1/similar/sku-1?n=8")
    rng = random.Random(2)
    cookies = []
    for _ in range(visitors):
        clients[0].delete_cookie("recs_aid")
        events = [{"event_id": str(uuid.uuid4()), "type": "view",
                   "item_id": f"sku-{min(int(rng.paretovariate(1.2)), n_items) - 1}"} for _ in range(3)]
        clients[0].post("/recs/api/v1/events", data=json.dumps({"events": events}), content_type="text/plain")
        cookies.append(clients[0].get_cookie("recs_aid").value)  # type: ignore[union-attr]
    similar = [f"/recs/api/v1/similar/sku-{min(int(rng.paretovariate(1.2)), n_items) - 1}?n=8" for _ in range(2000)]

    def get(i: int, path: str) -> None:
        """A request of a visitor: every row sends the cookie, so the test client's own work on
        it is the same in each row."""
        client = clients[i % 2]
        client.set_cookie("recs_aid", cookies[(i // 2) % len(cookies)])
        client.get(path)

    def for_you(i: int) -> None:
        get(i, "/recs/api/v1/for-you?n=8")

    def cpu_ms(request: Callable[[int], object], count: int) -> float:
        started = time.process_time()
        for i in range(count):
            request(i)
        return (time.process_time() - started) / count * 1000

    first = cpu_ms(for_you, 2 * len(cookies))  # each visitor's first answer in each app
    count = 10 * len(cookies)
    rows: dict[str, list[float]] = {"bare": [], "similar": [], "for-you, repeat": []}
    cpu_ms(lambda i: get(i, similar[i % len(similar)]), len(similar) * 2)  # fill the caches
    for _ in range(repeats):  # interleaved, so a change of load on the machine hits every row alike
        rows["bare"].append(cpu_ms(lambda i: get(i, "/bare"), count))
        rows["similar"].append(cpu_ms(lambda i: get(i, similar[i % len(similar)]), count))
        rows["for-you, repeat"].append(cpu_ms(for_you, count))
    bare = statistics.median(rows["bare"])
    print(f"\nin-process CPU per request (median of {repeats}; {len(cookies)} visitors, 2 apps)")
    print(f"{'requests':<40} {'cpu ms':>7} {'x bare':>7}")
    for name, values in rows.items():
        print(f"{name:<40} {statistics.median(values):>7.3f} {bare / statistics.median(values):>7.2f}")
    print(f"{'for-you, first answer in each app':<40} {first:>7.3f} {bare / first:>7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--visitors", type=int, default=500)
    parser.add_argument("--shop", type=Path, help="keep the built shop in this directory and reuse it when "
                        "it is already there (repeat runs skip loading and training)")
    parser.add_argument("--in-process", action="store_true", help="measure CPU per request in this process "
                        "(Flask's test client) instead of gunicorn and wrk; wrk is then not needed")
    args = parser.parse_args()
    if shutil.which("wrk") is None and not args.in_process:
        raise SystemExit("wrk is needed: apt-get install wrk")
    work = args.shop or Path(tempfile.mkdtemp(prefix="recs-bench-serve-"))
    try:
        env = shop_env(work)
        if not (work / "models" / "CURRENT").exists():
            work.mkdir(parents=True, exist_ok=True)
            build_shop(work, args.items, args.events)
        if args.in_process:
            in_process(env, args.visitors, args.items)
            return
        server, base = start_server(env)
        try:
            cookies = make_visitors(base, args.visitors, args.items)
            rng = random.Random(2)
            similar_paths = [f"/recs/api/v1/similar/sku-{min(int(rng.paretovariate(1.2)), args.items) - 1}?n=8"
                             for _ in range(2000)]
            loads = {
                "bare Flask JSON endpoint": (["/bare"], []),
                "similar items": (similar_paths, []),
                "for-you (fold-in of new events)": (["/recs/api/v1/for-you?n=8"], cookies),
            }
            results = {name: run_wrk(base, paths, jar, args.seconds, work, server)
                       for name, (paths, jar) in loads.items()}
            # Latency without queueing: one request in flight per worker (the -c16 runs measure
            # throughput at saturation, where p99 is mostly time spent waiting for a worker).
            light = {name: run_wrk(base, paths, jar, args.seconds, work, server, connections=2)
                     for name, (paths, jar) in loads.items()}
            changes = event_to_change(base, 100, args.items)
        finally:
            server.terminate()
            server.wait()
        bare = results["bare Flask JSON endpoint"]["rps"]
        print(f"\nserving: {args.items:,} items, {args.events:,} events, gunicorn -w 2, wrk -t2 -c16 -d{args.seconds:.0f}s "
              "(saturation: throughput)")
        # Worker CPU per request is steadier than req/s on a shared machine: other processes
        # take wall time from the workers, not CPU time.
        bare_cpu = results["bare Flask JSON endpoint"]["cpu_ms"]
        print(f"{'endpoint':<34} {'req/s':>8} {'x bare':>7} {'p50 ms':>7} {'p99 ms':>7} {'cpu ms':>7} {'x bare':>7}")
        for name, r in results.items():
            print(f"{name:<34} {r['rps']:>8.0f} {r['rps'] / bare:>7.2f} {r['p50']:>7.2f} {r['p99']:>7.2f} "
                  f"{r['cpu_ms']:>7.3f} {bare_cpu / r['cpu_ms']:>7.2f}")
        print(f"\nlatency at light load (wrk -t2 -c2: one request in flight per worker)\n"
              f"{'endpoint':<34} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}")
        for name, r in light.items():
            print(f"{name:<34} {r['rps']:>8.0f} {r['p50']:>7.2f} {r['p99']:>7.2f}")
        quantiles = statistics.quantiles(changes, n=20)
        print(f"\nevent -> changed for-you answer over HTTP ({len(changes)} visitors): "
              f"p50 {statistics.median(changes) * 1000:.1f} ms, p95 {quantiles[18] * 1000:.1f} ms")
        print(f"\n{'top-10 on ALS factors':<24} {'recall@10':>9} {'ms/query':>9}")
        for name, recall, ms in ann_vs_exact(env["RECS_MODEL_DIR"]):
            print(f"{name:<24} {recall:>9.3f} {ms:>9.3f}")
    finally:
        if args.shop is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
