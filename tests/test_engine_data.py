"""Events -> interaction matrix: weights, quantity, decay, dedup, identities, vocabularies, split."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from flask import Flask
from sqlalchemy import insert

from storefront_recs.engine import data
from storefront_recs.engine.data import (
    _SEP,
    MatrixConfig,
    _epoch,
    _Keys,
    _packed_epoch,
    _Vocab,
    decay,
    dedup_mask,
    holdout_split,
    lex_order,
    load_catalog,
    load_interactions,
    sessions,
)
from storefront_recs.models import Event, Identity

T0 = datetime(2026, 3, 1, 12, 0, 0)
WEIGHTS = {"view": 1.0, "add_to_cart": 4.0, "purchase": 8.0, "page_view": 0.0}


def event(user: str | None, item: str | None, kind: str = "view", at: datetime = T0, *,
          anon: str | None = None, quantity: int = 1, event_id: str | None = None) -> dict[str, Any]:
    return {"event_id": event_id or str(uuid.uuid4()), "line_no": 0, "type": kind, "user_key": user,
            "anonymous_id": anon, "item_id": item, "quantity": quantity, "ts": at, "source": "import"}


def store(app: Flask, rows: list[dict[str, Any]]) -> None:
    with app.extensions["storefront_recs"].engine.begin() as conn:
        conn.execute(insert(Event), rows)


def cell(inter: Any, user: str, item: str) -> float:
    m = inter.matrix()
    return float(m[inter.user_ids.index(user), inter.item_ids.index(item)])


def test_weights_quantity_decay_and_vocabularies(app: Flask) -> None:
    day = timedelta(days=1)
    store(app, [
        event("u1", "a", "view", T0),
        event("u1", "a", "purchase", T0 + day, quantity=3),
        event("u1", "b", "page_view", T0),            # weight 0: not an interaction
        event(None, "b", "add_to_cart", T0 - 9 * day, anon="visitor-1"),
        event("u2", None, "view", T0),                 # no item: ignored
        event("u2", "c", "view", T0 + day),            # newest event: no decay
    ])
    cfg = MatrixConfig(weights=WEIGHTS, half_life_days=10.0, dedup_seconds=0)
    inter = load_interactions(app.extensions["storefront_recs"].engine, cfg)
    assert inter.user_ids == ["anon:visitor-1", "u1", "u2"]  # canonical: sorted
    assert sorted(inter.item_ids) == ["a", "b", "c"]
    # view one day before the newest event decays by 0.5 ** (1/10); the purchase of 3 does not decay
    expected_a = 1.0 * 0.5 ** 0.1 + 8.0 * (1 + np.log(3))
    assert cell(inter, "u1", "a") == pytest.approx(expected_a, rel=1e-4)
    assert cell(inter, "anon:visitor-1", "b") == pytest.approx(4.0 * 0.5, rel=1e-4)
    assert cell(inter, "u2", "c") == pytest.approx(1.0)
    assert inter.events_read == 4


def test_linked_anonymous_history_counts_for_the_user(sqlite_app: Flask) -> None:
    engine = sqlite_app.extensions["storefront_recs"].engine
    with engine.begin() as conn:
        conn.execute(insert(Identity).values(anonymous_id="visitor-2", user_key="u9", linked_at=T0))
    store(sqlite_app, [event(None, "a", anon="visitor-2"), event("u9", "b")])
    inter = load_interactions(engine, MatrixConfig(weights=WEIGHTS))
    assert inter.user_ids == ["u9"]
    assert inter.matrix().nnz == 2


def test_reading_in_small_chunks_gives_the_same_interactions(app: Flask) -> None:
    # an id holding the separator of the packed read makes its chunk fall back to row by row
    odd = "odd\x1fitem"
    store(app, [event(f"u{n % 4}", f"i{n % 7}", "view", T0 + timedelta(minutes=n)) for n in range(30)]
          + [event("u1", odd, "purchase", T0, quantity=2), event(None, odd, "view", T0, anon="v1")])
    engine = app.extensions["storefront_recs"].engine
    cfg = MatrixConfig(weights=WEIGHTS, half_life_days=0, dedup_seconds=0)
    whole = load_interactions(engine, cfg)
    seen: list[int] = []
    chunked = load_interactions(engine, cfg, chunk_rows=4, on_progress=seen.append)
    assert whole.events_read == chunked.events_read == sum(seen) == 32
    assert chunked.user_ids == whole.user_ids == ["anon:v1", "u0", "u1", "u2", "u3"]
    assert odd in chunked.item_ids and chunked.item_ids == whole.item_ids
    assert (chunked.matrix() != whole.matrix()).nnz == 0
    assert cell(chunked, "u1", odd) == pytest.approx(8.0 * (1 + np.log(2)), rel=1e-4)
    # the times too, whether a chunk was read packed or row by row
    assert np.array_equal(chunked.ts, whole.ts)
    first, last = (t.replace(tzinfo=UTC).timestamp() for t in (T0, T0 + timedelta(minutes=29)))
    assert whole.time_range() == (first, last)


def test_catalogue_items_are_in_the_vocabulary_without_events(sqlite_app: Flask) -> None:
    recs = sqlite_app.extensions["storefront_recs"].recs
    with sqlite_app.app_context():
        recs.catalog.upsert([{"id": "new-1", "title": "t"}, {"id": "a", "title": "t"}])
    store(sqlite_app, [event("u1", "a"), event("u1", "gone")])
    inter = load_interactions(sqlite_app.extensions["storefront_recs"].engine, MatrixConfig(weights=WEIGHTS))
    assert inter.item_ids == ["a", "new-1", "gone"]  # catalogue first
    assert inter.matrix().shape == (1, 3)


def test_catalogue_attributes_read_back_as_stored(app: Flask) -> None:
    attrs = {"colour": ["rot", "blå"], "size": 42, "note": 'say "hi", \u00e9', "nested": {"a": None}}
    recs = app.extensions["storefront_recs"].recs
    with app.app_context():
        recs.catalog.upsert([{"id": "a", "title": "t", "attributes": attrs}, {"id": "b", "title": "u"},
                             {"id": "c", "title": "v", "attributes": {}}])
    catalog = load_catalog(app.extensions["storefront_recs"].engine)
    assert [(c["id"], c["attributes"]) for c in catalog] == [("a", attrs), ("b", {}), ("c", {})]


def test_repeats_within_the_window_count_once() -> None:
    users = np.array([0, 0, 0, 0, 1], np.int32)
    items = np.array([5, 5, 5, 5, 5], np.int32)
    types = np.array([0, 0, 0, 1, 0], np.int8)
    ts = np.array([100.0, 110.0, 500.0, 105.0, 101.0])
    keep = dedup_mask(users, items, types, ts, window=60)
    assert keep.tolist() == [True, False, True, True, True]


def test_sessions_split_on_gaps_per_visitor() -> None:
    users = np.array([0, 0, 0, 1], np.int32)
    ts = np.array([0.0, 100.0, 5000.0, 50.0])
    s = sessions(users, ts, gap=1800)
    assert s[0] == s[1] and s[2] != s[1] and s[3] not in (s[0], s[2])


def test_holdout_takes_each_users_latest_items(sqlite_app: Flask) -> None:
    hour = timedelta(hours=1)
    store(sqlite_app, [event("u1", f"i{k}", at=T0 + k * hour) for k in range(5)]
          + [event("u2", "i0"), event("u2", "i1", at=T0 + hour)])
    inter = load_interactions(sqlite_app.extensions["storefront_recs"].engine, MatrixConfig(weights=WEIGHTS))
    train, test = holdout_split(inter, fraction=0.2, min_items=3)
    u1, u2 = inter.user_ids.index("u1"), inter.user_ids.index("u2")
    assert [inter.item_ids[i] for i in test[u1].indices] == ["i4"]
    assert test[u2].nnz == 0 and train[u2].nnz == 2  # too few items to hold any out
    assert train[u1].nnz == 4


def test_decay_halves_per_half_life_down_to_the_floor() -> None:
    day = 86_400.0
    ts = np.array([0.0, 90 * day, 180 * day, 10_000 * day])
    assert decay(ts, 90.0, reference=180 * day, floor=0.05).tolist() == pytest.approx([0.25, 0.5, 1.0, 1.0])
    old = decay(np.array([0.0, 10_000 * day]), 90.0, floor=0.05)
    assert old.tolist() == pytest.approx([0.05, 1.0])
    assert decay(ts, 0.0).tolist() == [1.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize(("spread", "scale", "dtype"), [
    (1, 1.0, np.float64),  # whole seconds: the (key, microseconds) integer path
    (1, 1 / 3, np.float64),  # not whole microseconds: the rank path
    (1000, 4e8, np.float64),  # whole microseconds, but key x time span would overflow: the rank path
    (1, -0.37, np.float32),  # float32 scores (negative, zero, positive): the (key, bits) integer path
])
def test_lex_order_is_lexsort_with_ties(spread: int, scale: float, dtype: type) -> None:
    rng = np.random.default_rng(1)
    for n in (0, 1, 7, 5000):
        key = rng.integers(0, 50, n).astype(np.int64) * spread
        then = (rng.integers(-10, 10, n) * scale).astype(dtype)  # many ties: the original order decides
        assert np.array_equal(lex_order(key, then), np.lexsort((then, key)))
        assert np.array_equal(lex_order(key, -then), np.lexsort((-then, key)))
        assert np.array_equal(lex_order(np.sort(key), then), np.lexsort((then, np.sort(key))))
    signed_zeros = np.array([0.0, -0.0, 1.0, -0.0, 0.0], dtype=np.float32)  # equal: a tie
    assert np.array_equal(lex_order(np.zeros(5, np.int64), signed_zeros), [0, 1, 3, 4, 2])
    huge = np.array([2**62, 0, 2**62], dtype=np.int64)  # the combined key would overflow
    assert np.array_equal(lex_order(huge, np.zeros(3)), np.lexsort((np.zeros(3), huge)))


@pytest.mark.parametrize("texts", [
    ["2026-09-17 06:38:39.047981", "2026-09-04 08:25:34.776304"],  # one width: read as bytes
    ["2026-09-17 06:38:39", "2026-09-04 08:25:34.776304"],  # mixed widths: one string each
    ["2026-09-04T08:25:34.776304", "2026-09-17 06:38:39.000000", "2026-09-17 06:38:39.5"],
    ["2026-09-17 06:38:39.000001"],
])
def test_packed_sqlite_times_parse_like_one_text_at_a_time(texts: list[str]) -> None:
    assert np.array_equal(_packed_epoch(_SEP.join(texts), len(texts)), _epoch(texts))


# ids that differ only in length, trailing NULs, bytes past 8 and 16, non-ASCII and empty
ODD_IDS = ["", "a", "a\x00", "a\x00\x00", "ab", "item-1", "item-10", "item-100000", "abcdefgh",
           "abcdefgh\x00", "abcdefghi", "abcdefghijklmnopq", "blå", "bl\u00e5x", "\U0001f600", "z" * 40,
           "\ud7ff", "\ud800", "\ue000", "\uffff"]


def reference_codes(chunks: list[list[str]], fixed: list[str]) -> tuple[list[str], list[int]]:
    every = [v for chunk in chunks for v in chunk]
    vocab = list(dict.fromkeys(fixed)) + sorted(set(every) - set(fixed))
    return vocab, [vocab.index(v) for v in every]


def vocab_of(chunks: list[list[str]], fixed: list[str], *, packed: bool) -> tuple[list[str], list[int]]:
    vocab = _Vocab()
    for chunk in chunks:
        keys = _Keys.packed(_SEP.join(chunk), len(chunk)) if packed else _Keys.of(chunk)
        assert keys is not None
        vocab.add(*keys.distinct())
    ids, codes = vocab.codes(fixed)
    return ids, codes.tolist()


@pytest.mark.parametrize("packed", [True, False])
def test_vocabulary_from_bytes_matches_python_strings(packed: bool) -> None:
    rng = np.random.default_rng(3)
    chunks = [[ODD_IDS[k] for k in rng.integers(0, len(ODD_IDS), size)] for size in (1, 40, 7, 300)]
    chunks.append(["only-in-the-last-chunk-and-longer-than-the-rest", "a"])
    fixed = ["item-10", "never-seen", "a", "item-10"]
    assert vocab_of(chunks, fixed, packed=packed) == reference_codes(chunks, fixed)
    assert vocab_of([], fixed, packed=packed) == (["item-10", "never-seen", "a"], [])


def test_keys_decode_back_to_the_same_strings() -> None:
    keys = _Keys.of(ODD_IDS)
    assert keys.decode() == ODD_IDS
    assert keys.take(np.array([3, 0, 15])).decode() == [ODD_IDS[3], "", ODD_IDS[15]]
    assert _Keys.of(["a" + _SEP + "b", _SEP, "c"]).decode() == ["a" + _SEP + "b", _SEP, "c"]
    assert _Keys.of([]).decode() == []


def test_a_separator_inside_a_packed_id_is_detected() -> None:
    assert _Keys.packed(_SEP.join(["a", "b" + _SEP + "c"]), 2) is None
    assert _Keys.packed("", 1) is not None


def test_hash_collisions_fall_back_to_comparing_the_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = [ODD_IDS, ODD_IDS[::-1], ["a", "b", "a"]]
    expected = reference_codes(chunks, ["b"])
    monkeypatch.setattr(data, "_hash", lambda keys: np.zeros(len(keys), np.uint64))  # every id collides
    assert vocab_of(chunks, ["b"], packed=False) == expected


def test_unusual_ids_read_back_from_the_database(app: Flask) -> None:
    users = ["ü", "u", "uu", "u-with-a-much-longer-key-than-the-others", "日本"]
    items = ["i", "i-2", "ï", "item-" + "x" * 100]
    pairs = [(u, i) for n, u in enumerate(users) for m, i in enumerate(items) if (n + m) % 3]
    store(app, [event(u, i, at=T0 + timedelta(minutes=n)) for n, (u, i) in enumerate(pairs)])
    cfg = MatrixConfig(weights=WEIGHTS, half_life_days=0)
    inter = load_interactions(app.extensions["storefront_recs"].engine, cfg, chunk_rows=6)
    assert inter.user_ids == sorted(users) and inter.item_ids == sorted(items)
    cells = {(inter.user_ids[u], inter.item_ids[i]) for u, i in zip(*inter.matrix().nonzero(), strict=True)}
    assert cells == set(pairs)
