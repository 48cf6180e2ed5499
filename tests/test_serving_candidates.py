"""The numpy blend of candidate sources gives what adding them one by one to a dict gives."""

from __future__ import annotations

import random

import numpy as np

from storefront_recs.serving.candidates import GENERIC_REASONS, LRU, Candidates


def blend_one_by_one(sources: list[tuple[list[str], list[float], str]]) -> list[tuple[str, float, str]]:
    """The reference: sum per item in the order added; the first specific reason wins over generic ones."""
    found: dict[str, tuple[float, str]] = {}
    for ids, scores, reason in sources:
        for item_id, score in zip(ids, scores, strict=True):
            if score <= 0:
                continue
            if item_id not in found:
                found[item_id] = (score, reason)
            else:
                total, kept = found[item_id]
                if kept in GENERIC_REASONS and reason not in GENERIC_REASONS:
                    kept = reason
                found[item_id] = (total + score, kept)
    return sorted(((i, s, r) for i, (s, r) in found.items()), key=lambda e: (-e[1], e[0]))


def test_blend_matches_adding_sources_one_by_one() -> None:
    rng = random.Random(7)
    vocabulary = [f"sku-{i}" for i in range(60)]
    index = {item_id: i for i, item_id in enumerate(vocabulary)}
    reasons = ["picked for your taste", "popular right now", "because you viewed A", "because you viewed B",
               "similar to C"]
    for _ in range(300):
        sources = []
        candidates = Candidates(vocabulary, index)
        for _ in range(rng.randint(0, 6)):
            ids = [rng.choice(vocabulary + ["new-1", "new-2"]) for _ in range(rng.randint(0, 12))]
            # Coarse scores, so that ties (ordered by id) and zeros (ignored) happen.
            scores = [rng.choice([0.0, 0.25, 0.5, 1.0, rng.random()]) for _ in ids]
            reason = rng.choice(reasons)
            sources.append((ids, scores, reason))
            if all(i in index for i in ids) and rng.random() < 0.5:
                candidates.add_indexes(np.array([index[i] for i in ids], dtype=np.int64), np.array(scores), reason)
            else:
                candidates.add_ids(ids, np.array(scores), reason)
        expected = blend_one_by_one(sources)
        assert list(candidates.ranked()) == expected
        assert dict(candidates) == {i: (s, r) for i, s, r in expected}


def test_lru_keeps_the_recently_used() -> None:
    cache: LRU[str, int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)  # evicts b, the least recently used
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == (1, 3)
