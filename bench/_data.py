"""Shared benchmark data: loaders for ``../shared/data`` and a synthetic shop, plus fast bulk loading.

Every loader returns a :class:`Dataset`: column arrays of events (``users``, ``items``,
``types``, ``ts`` as float epoch seconds, ``quantity``, ``order`` — an order/basket id or -1)
and the catalogue as a list of item dicts (``id``, ``title``, ``category``, ``description``,
``attributes``). The real data is read in place and never copied into the repository;
a loader returns None when its files are absent, so benchmarks skip cleanly.

Functions:

- ``shared_data_dir(arg)``: where the shared data is (argument, ``$RECS_SHARED_DATA`` or
  ``<repo>/../shared/data``).
- ``load_movielens(dir)``, ``load_online_retail(dir)``, ``load_taobao(dir)``: one data set each;
  ``load_shared(dir)`` yields all that are present.
- ``synthetic(n_events, n_users, n_items, seed)``: a shop with taste clusters, Zipf-like item
  popularity, sessions, carts and purchases, over 90 days (vectorised: 1M events in ~1 s).
- ``insert_dataset(engine, dataset)``: bulk-load events (DBAPI ``executemany`` on SQLite,
  ``COPY`` on PostgreSQL) and the catalogue into the recs tables of a migrated database.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TYPE_NAMES = np.array(["view", "add_to_cart", "purchase", "click"])


@dataclass
class Dataset:
    """Events as parallel arrays (string ids) and a catalogue."""

    name: str
    users: np.ndarray  # str
    items: np.ndarray  # str
    types: np.ndarray  # str
    ts: np.ndarray  # float epoch seconds (UTC)
    quantity: np.ndarray  # int
    order: np.ndarray  # int64 order/basket id, -1 when none
    catalog: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.users)


def shared_data_dir(arg: str | None = None) -> Path:
    """The shared data folder: ``arg``, else ``$RECS_SHARED_DATA``, else ``<repo>/../shared/data``."""
    return Path(arg or os.environ.get("RECS_SHARED_DATA") or ROOT.parent / "shared" / "data")


def _dataset(name: str, rows: dict[str, list[Any]], catalog: list[dict[str, Any]]) -> Dataset:
    n = len(rows["users"])
    return Dataset(
        name=name,
        users=np.array(rows["users"], dtype=object),
        items=np.array(rows["items"], dtype=object),
        types=np.array(rows["types"], dtype=object),
        ts=np.array(rows["ts"], dtype=np.float64),
        quantity=np.array(rows.get("quantity") or [1] * n, dtype=np.int64),
        order=np.array(rows.get("order") or [-1] * n, dtype=np.int64),
        catalog=catalog,
    )


def load_movielens(directory: Path) -> Dataset | None:
    """MovieLens latest-small: every rating is a ``view``; genres are category and attributes."""
    path = directory / "ml-latest-small"
    if not (path / "ratings.csv").exists():
        return None
    rows: dict[str, list[Any]] = {"users": [], "items": [], "types": [], "ts": []}
    with open(path / "ratings.csv", newline="") as handle:
        for r in csv.DictReader(handle):
            rows["users"].append("ml-" + r["userId"])
            rows["items"].append("movie-" + r["movieId"])
            rows["types"].append("view")
            rows["ts"].append(float(r["timestamp"]))
    catalog = []
    with open(path / "movies.csv", newline="") as handle:
        for r in csv.DictReader(handle):
            genres = [g for g in r["genres"].split("|") if g and g != "(no genres listed)"]
            catalog.append({"id": "movie-" + r["movieId"], "title": r["title"],
                            "category": genres[0] if genres else None, "attributes": {"genres": genres}})
    return _dataset("ml-latest-small", rows, catalog)


def load_online_retail(directory: Path) -> Dataset | None:
    """UCI Online Retail (France): each order line is a ``purchase``; cancellations skipped."""
    path = directory / "online-retail-france" / "france.csv"
    if not path.exists():
        return None
    rows: dict[str, list[Any]] = {"users": [], "items": [], "types": [], "ts": [], "quantity": [], "order": []}
    titles: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        for r in csv.DictReader(handle):
            if r["InvoiceNo"].startswith("C") or not r["CustomerID"] or int(r["Quantity"]) <= 0:
                continue
            when = datetime.strptime(r["InvoiceDate"], "%m/%d/%Y %H:%M").replace(tzinfo=UTC)
            rows["users"].append("cust-" + r["CustomerID"].split(".")[0])
            rows["items"].append("stock-" + r["StockCode"])
            rows["types"].append("purchase")
            rows["ts"].append(when.timestamp())
            rows["quantity"].append(min(int(r["Quantity"]), 10_000))
            rows["order"].append(int("".join(c for c in r["InvoiceNo"] if c.isdigit()) or -1))
            titles.setdefault("stock-" + r["StockCode"], r["Description"].strip())
    catalog = [{"id": i, "title": t, "category": None, "attributes": {}} for i, t in titles.items()]
    return _dataset("online-retail-france", rows, catalog)


TAOBAO_TYPES = {"pv": "view", "fav": "click", "cart": "add_to_cart", "buy": "purchase"}


def load_taobao(directory: Path) -> Dataset | None:
    """Taobao UserBehavior sample: pv/fav/cart/buy -> view/click/add_to_cart/purchase."""
    path = directory / "taobao-userbehavior" / "UserBehavior_sample.csv"
    if not path.exists():
        return None
    rows: dict[str, list[Any]] = {"users": [], "items": [], "types": [], "ts": []}
    categories: dict[str, str] = {}
    with open(path, newline="") as handle:
        for r in csv.DictReader(handle):
            item = "tb-" + r["item_id"]
            rows["users"].append("tb-" + r["user_id"])
            rows["items"].append(item)
            rows["types"].append(TAOBAO_TYPES.get(r["behavior_type"], "view"))
            rows["ts"].append(float(r["timestamp"]))
            categories.setdefault(item, "cat-" + r["category_id"])
    catalog = [{"id": i, "title": None, "category": c, "attributes": {}} for i, c in categories.items()]
    return _dataset("taobao-userbehavior", rows, catalog)


def load_shared(directory: Path) -> Iterator[Dataset]:
    """Every shared data set that is present."""
    for loader in (load_movielens, load_online_retail, load_taobao):
        dataset = loader(directory)
        if dataset is not None:
            yield dataset


WORDS = np.array(["red", "blue", "green", "black", "white", "linen", "cotton", "wool", "steel", "oak", "classic", "slim", "large", "small", "vintage", "modern", "soft", "warm", "light", "heavy"])
KINDS = np.array(["shirt", "shoe", "hat", "bag", "lamp", "mug", "chair", "table", "sock", "scarf", "jacket", "book"])


def synthetic(n_events: int = 1_000_000, n_users: int = 50_000, n_items: int = 20_000,
              seed: int = 0, days: float = 90.0) -> Dataset:
    """A generated shop: users with a favourite cluster, Zipf-like popularity, sessions and carts."""
    rng = np.random.default_rng(seed)
    n_clusters = len(KINDS) * 4
    item_cluster = rng.integers(0, n_clusters, n_items)
    by_cluster = [np.flatnonzero(item_cluster == c) for c in range(n_clusters)]
    # Zipf-like popularity inside each cluster
    weights = [1.0 / np.arange(1, len(ids) + 1) ** 0.8 for ids in by_cluster]
    weights = [w / w.sum() for w in weights]
    user_activity = rng.lognormal(0.0, 1.0, n_users)
    user_activity /= user_activity.sum()
    users = rng.choice(n_users, n_events, p=user_activity)
    taste = rng.integers(0, n_clusters, n_users)
    own = rng.random(n_events) < 0.8
    clusters = np.where(own, taste[users], rng.integers(0, n_clusters, n_events))
    items = np.empty(n_events, dtype=np.int64)
    for c in range(n_clusters):
        mask = clusters == c
        items[mask] = rng.choice(by_cluster[c], int(mask.sum()), p=weights[c])
    roll = rng.random(n_events)
    types = np.select([roll < 0.80, roll < 0.90, roll < 0.95], [0, 3, 1], default=2)
    end = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
    ts = end - rng.random(n_events) * days * 86_400
    catalog = [
        {"id": f"item-{i}", "title": f"{WORDS[i % len(WORDS)]} {KINDS[item_cluster[i] % len(KINDS)]} {i}",
         "category": str(KINDS[item_cluster[i] % len(KINDS)]),
         "description": f"{WORDS[(i * 7) % len(WORDS)]} {WORDS[item_cluster[i] % len(WORDS)]}",
         "attributes": {"line": int(item_cluster[i])}}
        for i in range(n_items)
    ]
    return Dataset(
        name=f"synthetic-{n_events // 1000}k",
        users=np.char.add("user-", users.astype(str)).astype(object),
        items=np.char.add("item-", items.astype(str)).astype(object),
        types=TYPE_NAMES[types].astype(object),
        ts=ts,
        quantity=np.ones(n_events, dtype=np.int64),
        order=np.full(n_events, -1, dtype=np.int64),
        catalog=catalog,
    )


def _event_rows(ds: Dataset, start: int, end: int) -> list[tuple[Any, ...]]:
    stamps = [datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S.%f") for t in ds.ts[start:end]]
    return [
        (f"{ds.name}-{i}", 0, ds.types[i], ds.users[i], ds.items[i], int(ds.quantity[i]), stamps[i - start], "import")
        for i in range(start, end)
    ]


def insert_dataset(engine: Any, ds: Dataset, batch: int = 100_000) -> None:
    """Bulk-load a data set's catalogue and events into a migrated recs database."""
    now = datetime.now(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    items = [(it["id"], it.get("title"), it.get("category"), it.get("description"),
              json.dumps(it.get("attributes") or {}), True, True, now, now) for it in ds.catalog]
    item_sql = ("INSERT INTO recs_items (id, title, category, description, attributes, in_stock, active, "
                "created_at, updated_at) VALUES ({})")
    event_cols = "(event_id, line_no, type, user_key, item_id, quantity, ts, source)"
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if engine.dialect.name == "sqlite":
            cur.executemany(item_sql.format(",".join("?" * 9)), items)
            for start in range(0, len(ds), batch):
                cur.executemany(f"INSERT INTO recs_events {event_cols} VALUES (?,?,?,?,?,?,?,?)",
                                _event_rows(ds, start, min(start + batch, len(ds))))
        else:
            cur.executemany(item_sql.format(",".join(["%s"] * 9)), items)
            with cur.copy(f"COPY recs_events {event_cols} FROM STDIN") as copy:
                for start in range(0, len(ds), batch):
                    for row in _event_rows(ds, start, min(start + batch, len(ds))):
                        copy.write_row(row)
        raw.commit()
    finally:
        raw.close()
    if engine.dialect.name == "postgresql":
        # what autovacuum does soon after a bulk load in a running shop: without it the first
        # reads of a just-copied table check every row's visibility (0.5 s more on 1M events)
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE recs_events")
