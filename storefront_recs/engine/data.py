"""Events -> interaction arrays -> sparse user x item matrices, with saved id vocabularies.

Events are read in chunks of event ids, each chunk as one row of joined strings computed by the
database (``group_concat`` / ``string_agg``: the per-row cost of a DBAPI fetch was most of the
load time), unpacked with numpy (ids as bytes: only the distinct ones become Python strings),
then weighted, decayed and deduplicated with vectorised numpy.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse
from sqlalchemy import (
    BigInteger,
    Engine,
    Select,
    Text,
    and_,
    cast,
    func,
    literal,
    select,
    type_coerce,
)
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.expression import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from ..config import from_settings, setting
from ..models import Event, Identity, Item

CHUNK_ROWS = 100_000  # event ids per chunk
READERS = 2  # connections reading chunks at the same time
_SEP = "\x1f"  # ASCII unit separator between ids in a packed chunk
ANON_PREFIX = "anon:"
DAY = 86_400.0


def _weights(weights: Mapping[str, Any]) -> dict[str, float]:
    return {str(kind): float(weight) for kind, weight in dict(weights).items()}


@dataclass(frozen=True)
class MatrixConfig:
    """How events become interaction strengths."""

    weights: Mapping[str, float] = setting("RECS_EVENT_WEIGHTS", _weights)
    half_life_days: float = setting("RECS_HALF_LIFE_DAYS", float)
    decay_floor: float = setting("RECS_DECAY_FLOOR", float)
    dedup_seconds: float = setting("RECS_DEDUP_SECONDS", float)
    session_gap_seconds: float = setting("RECS_SESSION_GAP_SECONDS", float)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MatrixConfig:
        return from_settings(cls, config)


@dataclass
class Interactions:
    """One row per kept event, as parallel arrays, plus the id vocabularies.

    ``strength`` is type weight x quantity factor x time decay; ``raw`` is without decay;
    ``decay`` is the time decay alone.
    """

    user_ids: list[str]
    item_ids: list[str]
    users: np.ndarray
    items: np.ndarray
    strength: np.ndarray
    raw: np.ndarray
    decay: np.ndarray
    ts: np.ndarray
    types: np.ndarray
    type_names: list[str]
    catalog: list[dict[str, Any]] = field(default_factory=list)
    events_read: int = 0

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def matrix(self, mask: np.ndarray | None = None, values: np.ndarray | None = None) -> sparse.csr_matrix:
        """The users x items CSR matrix of summed strengths (optionally of a subset of events).

        Relies on the events being sorted by (user, item, ...): each cell's events are
        contiguous, so the cells are summed with ``np.add.reduceat``, no sort needed.
        """
        data = self.strength if values is None else values
        users, items = self.users, self.items
        if mask is not None:
            data, users, items = data[mask], users[mask], items[mask]
        starts = cell_starts(users, items)
        return _csr(np.add.reduceat(data, starts) if len(starts) else data[:0], users[starts],
                    items[starts], (self.n_users, self.n_items))

    def time_range(self) -> tuple[float | None, float | None]:
        if not len(self.ts):
            return None, None
        return float(self.ts.min()), float(self.ts.max())


def epoch_microseconds(column: Any, dialect: str) -> ColumnElement[Any]:
    """SQL for a naive-UTC DateTime column as integer epoch microseconds (not SQLite). An integer's
    text is cheaper to parse than a float's (3 vs 31 ms per 100,000), and exact: the float
    seconds are off by far less than half a microsecond, which the cast rounds away."""
    seconds = func.date_part("epoch", column) if dialect == "postgresql" else func.extract("epoch", column)
    return cast(seconds * 1_000_000, BigInteger)


def load_catalog(engine: Engine) -> list[dict[str, Any]]:
    """Active catalogue items (the fields the content model reads), ordered by id."""
    # attributes come as JSON text and are parsed in one ``json.loads`` of them all: the JSON
    # type's per-row parse was most of this function's time on a large catalogue
    cols = (Item.id, Item.title, Item.description, Item.category, cast(Item.attributes, Text))
    with engine.connect() as conn:
        rows = conn.execute(select(*cols).where(Item.active.is_(True)).order_by(Item.id)).all()
    attributes = json.loads("[" + ",".join("null" if r[4] is None else r[4] for r in rows) + "]")
    return [  # tuple unpacking: a Row's attribute access by name was most of this loop
        {"id": item_id, "title": title, "description": description, "category": category,
         "attributes": attrs or {}}
        for (item_id, title, description, category, _), attrs in zip(rows, attributes, strict=True)
    ]


def _event_columns(engine: Engine, type_names: list[str]) -> tuple[Any, list[ColumnElement[Any]]]:
    """The events table and the per-event columns: user key (linked identity or ``anon:`` id),
    item, type, quantity and time, all computed by the database (the type as stored: a
    ``CASE`` mapping it to a number cost SQLite a fifth of the query).

    The linked identity is a correlated subquery inside ``coalesce``, so it is only looked up for
    events without a user key (an outer join probes the identities index for every event). The
    time is epoch microseconds on PostgreSQL and SQLite's stored ISO text on SQLite (numpy
    parses that faster than ``julianday``, and keeps the microseconds).
    """
    e, i = Event.__table__.alias("e"), Identity.__table__
    linked = select(i.c.user_key).where(i.c.anonymous_id == e.c.anonymous_id).scalar_subquery()
    user = func.coalesce(e.c.user_key, linked, literal(ANON_PREFIX) + e.c.anonymous_id)
    sqlite = engine.dialect.name == "sqlite"
    ts = type_coerce(e.c.ts, Text) if sqlite else epoch_microseconds(e.c.ts, engine.dialect.name)
    return e, [user, e.c.item_id, e.c.type, e.c.quantity, ts]


def _events_in(engine: Engine, e: Any, type_names: list[str], lo: int, hi: int) -> ColumnElement[bool]:
    """Weighted events with ids in ``[lo, hi)``. On SQLite, a unary ``+`` keeps the type index
    out of a query that reads most of the table anyway (cheaper than ``type || ''``)."""
    kind = UnaryExpression(e.c.type, operator=custom_op("+"), type_=Text) \
        if engine.dialect.name == "sqlite" else e.c.type
    return and_(e.c.id >= lo, e.c.id < hi, e.c.item_id.is_not(None), kind.in_(type_names))


def packed_query(engine: Engine, type_names: list[str], lo: int, hi: int) -> Select[*tuple[Any, ...]]:
    """One row for the events with ids in ``[lo, hi)``: their count and each column joined into
    one string (``group_concat`` / ``string_agg``), so a chunk crosses into Python as six
    values instead of a tuple per event; numpy unpacks them."""
    e, cols = _event_columns(engine, type_names)
    inner = select(*(c.label(f"c{n}") for n, c in enumerate(cols))) \
        .where(_events_in(engine, e, type_names, lo, hi)).subquery()
    seps = (_SEP, _SEP, _SEP, ",", _SEP if engine.dialect.name == "sqlite" else ",")
    return select(func.count(), *(func.aggregate_strings(cast(inner.c[f"c{n}"], Text), sep)
                                  for n, sep in enumerate(seps)))


def rows_query(engine: Engine, type_names: list[str], lo: int, hi: int) -> Select[*tuple[Any, ...]]:
    """The same events one row each (for a chunk whose ids contain the separator)."""
    e, cols = _event_columns(engine, type_names)
    return select(*cols).where(_events_in(engine, e, type_names, lo, hi))


def _epoch(values: Any) -> np.ndarray:
    """Epoch seconds from integer epoch microseconds, or from SQLite's ISO text via numpy's
    datetime parser."""
    if not len(values):
        return np.zeros(0, dtype=np.float64)
    if not isinstance(values[0], str):
        return np.array(values, dtype=np.int64) / 1e6
    stamps = np.array(values, dtype="datetime64[us]")
    return stamps.astype(np.int64) / 1e6


def _packed_epoch(packed: str, n: int) -> np.ndarray:
    """Epoch seconds of ``n`` ISO texts joined by ``_SEP``. When they all have one width (as
    SQLAlchemy writes them), numpy reads them as fixed-width bytes without a Python string each."""
    width = packed.find(_SEP)
    raw = (packed + _SEP).encode("ascii", errors="replace")
    if n and width > 0 and len(raw) == n * (width + 1) and packed.isascii():
        codes = np.frombuffer(raw, dtype=np.uint8)
        if (codes[width :: width + 1] == ord(_SEP)).all():
            texts = np.frombuffer(raw, dtype=f"S{width + 1}").astype(f"S{width}")
            return texts.astype("datetime64[us]").astype(np.int64) / 1e6
    return _epoch(packed.split(_SEP))


def _id_range(engine: Engine) -> tuple[int, int]:
    # one subquery each: SQLite reads min or max of the primary key from the b-tree only when it
    # is the query's single aggregate (together they scan the table: 0.15-0.3 s on 1M events)
    e = Event.__table__
    with engine.connect() as conn:
        lo, hi = conn.execute(select(select(func.min(e.c.id)).scalar_subquery(),
                                     select(func.max(e.c.id)).scalar_subquery())).one()
    return (0, -1) if lo is None else (int(lo), int(hi))


def _read_chunks(
    engine: Engine, type_names: list[str], chunk_rows: int, readers: int = READERS,
) -> Iterator[_Chunk]:
    """(users, items, type codes, quantities, epoch seconds) per chunk of event ids, in id order;
    users and items as each chunk's distinct ids and every event's number among them.

    ``readers`` worker threads, each owning a connection, query and unpack chunks at the same
    time (the database driver and numpy's sorts release the GIL, so two readers use both cores).
    """
    lo, hi = _id_range(engine) if type_names else (0, -1)
    sqlite = engine.dialect.name == "sqlite"
    starts = range(lo, hi + 1, chunk_rows)
    workers = [ThreadPoolExecutor(1, thread_name_prefix="recs-load") for _ in range(max(1, readers))]
    conns: list[Any] = []
    pending: dict[int, Future[_Chunk | None]] = {}

    def read(conn: Any, start: int) -> _Chunk | None:
        n, users, items, types, qty, ts = conn.execute(
            packed_query(engine, type_names, start, start + chunk_rows)).one()
        if not n:
            return None
        user_keys, item_keys, type_keys = _Keys.packed(users, n), _Keys.packed(items, n), _Keys.packed(types, n)
        if user_keys is None or item_keys is None or type_keys is None:  # a separator inside an id
            rows = conn.execute(rows_query(engine, type_names, start, start + chunk_rows)).all()
            u, i, c, q, t = zip(*rows, strict=True)
            user_keys, item_keys, type_keys = _Keys.of(list(u)), _Keys.of(list(i)), _Keys.of(list(c))
            quantities, times = np.array(q, np.int32), _epoch(t)
        else:
            quantities = np.fromstring(qty, np.int32, sep=",")
            times = _packed_epoch(ts, n) if sqlite else np.fromstring(ts, np.int64, sep=",") / 1e6
        return user_keys.distinct(), item_keys.distinct(), _type_codes(type_keys, type_names), quantities, times

    def submit(n_chunk: int) -> None:
        if n_chunk < len(starts):
            k = n_chunk % len(workers)
            pending[n_chunk] = workers[k].submit(read, conns[k], starts[n_chunk])

    try:
        for worker in workers:
            conns.append(worker.submit(engine.connect).result())
            if engine.dialect.name == "postgresql":  # compiling each chunk's query cost more than running it
                worker.submit(conns[-1].exec_driver_sql, "SET LOCAL jit = off").result()
        for n_chunk in range(len(workers)):
            submit(n_chunk)
        for n_chunk in range(len(starts)):
            chunk = pending.pop(n_chunk).result()
            submit(n_chunk + len(workers))
            if chunk is not None:
                yield chunk
    finally:
        for future in pending.values():
            future.cancel()
        for worker, conn in zip(workers, conns, strict=False):
            worker.submit(conn.close).result()
        for worker in workers:
            worker.shutdown()


def _type_codes(types: _Keys, type_names: list[str]) -> np.ndarray:
    """Each event's type as its index in ``type_names`` (the query reads only those types)."""
    first, inverse = types.unique()
    lookup = np.array([type_names.index(name) for name in types.take(first).decode()], dtype=np.int8)
    return lookup[inverse]


def load_interactions(
    engine: Engine,
    cfg: MatrixConfig,
    *,
    chunk_rows: int = CHUNK_ROWS,
    on_progress: Callable[[int], None] | None = None,
    catalog: Callable[[], list[dict[str, Any]]] | None = None,
) -> Interactions:
    """Read every weighted event in chunks and return deduplicated, decayed interactions.

    Vocabularies are canonical (catalogue items by id, then other items by id; users by key)
    and events are sorted, so the result does not depend on the order the database returns.
    ``catalog``: returns ``load_catalog(engine)`` (say, read in another thread by the caller);
    by default it is read on its own connection while the events load.
    """
    type_names = sorted(t for t, w in cfg.weights.items() if w > 0)
    user_vocab, item_vocab = _Vocab(), _Vocab()
    parts: list[tuple[np.ndarray, ...]] = []
    total = 0
    with ThreadPoolExecutor(1, thread_name_prefix="recs-load") as side:
        read_catalog = catalog or side.submit(load_catalog, engine).result
        for user_keys, item_keys, codes, qty, ts in _read_chunks(engine, type_names, chunk_rows):
            user_vocab.add(*user_keys)
            item_vocab.add(*item_keys)
            parts.append((codes, qty, ts))
            total += len(codes)
            if on_progress is not None:
                on_progress(len(codes))
        catalog_items = read_catalog()
        types, qty, ts = [np.concatenate(col) for col in zip(*parts, strict=True)] if parts else _empty()
        by_time = side.submit(np.argsort, ts, kind="stable")  # beside the vocabularies
        user_ids, users = user_vocab.codes()
        item_ids, items = item_vocab.codes([item["id"] for item in catalog_items])
        order = _event_order(users, items, types, ts, len(item_ids), len(type_names), by_time.result())
    users, items, types, qty, ts = users[order], items[order], types[order], qty[order], ts[order]
    keep = (qty > 0) & dedup_mask(users, items, types, ts, cfg.dedup_seconds, presorted=True)
    users, items, types, qty, ts = users[keep], items[keep], types[keep], qty[keep], ts[keep]
    weights = np.array([cfg.weights[t] for t in type_names], dtype=np.float32)
    raw = weights[types] * (1.0 + np.log(qty.astype(np.float32)))
    time_decay = decay(ts, cfg.half_life_days, floor=cfg.decay_floor)
    return Interactions(
        user_ids=user_ids,
        item_ids=item_ids,
        users=users,
        items=items,
        strength=(raw * time_decay).astype(np.float32),
        raw=raw.astype(np.float32),
        decay=time_decay,
        ts=ts,
        types=types,
        type_names=type_names,
        catalog=catalog_items,
        events_read=total,
    )


def _event_order(users: np.ndarray, items: np.ndarray, types: np.ndarray, ts: np.ndarray,
                 n_items: int, n_types: int, by_time: np.ndarray | None = None) -> np.ndarray:
    """The stable order of events by (user, item, type, ts), as ``np.lexsort`` gives it."""
    return lex_order((users.astype(np.int64) * n_items + items) * max(n_types, 1) + types, ts, by_time)


def lex_order(key: np.ndarray, then: np.ndarray, by_then: np.ndarray | None = None) -> np.ndarray:
    """``np.lexsort((then, key))`` for a non-negative int64 ``key``, faster: (``key``, ``then``) as
    one int64 when ``then`` has integer codes (``_order_codes``) that fit, stable-sorted; else one
    int64 key (``key``, then the rank in a stable sort by ``then``) sorted once; it is unique, so
    the sort need not be stable. Falls back to lexsort when that key could overflow.
    ``by_then``: ``np.argsort(then, kind="stable")`` when the caller has it already."""
    n = len(key)
    keys = int(key.max()) + 1 if n else 0
    if not n or keys * n >= 2**63 or int(key.min()) < 0:
        return np.lexsort((then, key))
    if by_then is None:
        codes = _order_codes(then)
        span = 0 if codes is None else int(codes.max()) - int(codes.min()) + 1
        if codes is not None and keys * span < 2**63:
            # (key, then) as one integer, stable-sorted: timsort is 5-10x faster than the float
            # argsort below when ``key`` is already in order (cells by user, scores by row)
            return np.argsort(key * span + (codes - codes.min()), kind="stable")
        by_then = np.argsort(then, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[by_then] = np.arange(n, dtype=np.int64)
    # sorting the values (a SIMD sort) is ~5x faster than argsort; each value's rank gives its row
    return by_then[np.sort(key * n + rank) % n]


def _order_codes(values: np.ndarray) -> np.ndarray | None:
    """Integers with the same order and ties as ``values``, when they are float32 (their bits,
    sign-flipped) or float64 whole microseconds (times as read from the database); else None."""
    if values.dtype == np.float32:
        if np.isnan(values).any():
            return None
        bits = (values + np.float32(0)).view(np.uint32).astype(np.int64)  # + 0 turns -0.0 into 0.0
        return np.where(bits >= 2**31, (2**32 - 1) - bits, bits + 2**31)
    if values.dtype != np.float64 or not (values.min() > -9e9 and values.max() < 9e9):  # NaN fails too
        return None
    micros = np.rint(values * 1e6).astype(np.int64)
    return micros if np.array_equal(micros / 1e6, values) else None


# splitmix64's multipliers: a key's hash mixes its length and each 8-byte word in turn
_MIX = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))
_LOW_BYTES = np.array([(1 << 8 * k) - 1 for k in range(9)], dtype=np.uint64)  # masks of the first k bytes


@dataclass
class _Keys:
    """Ids as UTF-8 bytes, zero-padded into 64-bit words (``words[j]`` holds bytes 8j..8j+7 of each
    id, little-endian) with their byte lengths, so that numpy compares and hashes them."""

    words: list[np.ndarray]
    lens: np.ndarray

    @classmethod
    def packed(cls, text: str, n: int) -> _Keys | None:
        """The ``n`` ids joined by ``_SEP`` in ``text``, or None if it holds more (an id has one)."""
        buf = np.frombuffer(text.encode("utf-8", "surrogatepass"), np.uint8)
        ends = np.flatnonzero(buf == ord(_SEP))
        if len(ends) != n - 1:
            return None
        starts = np.concatenate(([0], ends + 1))
        return cls._cut(buf, starts, np.concatenate((ends, [len(buf)])) - starts)

    @classmethod
    def of(cls, values: list[str]) -> _Keys:
        encoded = [value.encode("utf-8", "surrogatepass") for value in values]
        lens = np.fromiter(map(len, encoded), np.int64, len(encoded))
        return cls._cut(np.frombuffer(b"".join(encoded), np.uint8), np.cumsum(lens) - lens, lens)

    @classmethod
    def _cut(cls, buf: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> _Keys:
        n_words = max(1, -(-int(lens.max(initial=0)) // 8))
        padded = np.concatenate((buf, np.zeros(8 * n_words, np.uint8)))
        # the 8 bytes from every offset as one number (an overlapping, unaligned view, no copy)
        at = np.ndarray((len(padded) - 7,), "<u8", padded, strides=(1,))
        return cls([at[starts + 8 * j] & _LOW_BYTES[np.clip(lens - 8 * j, 0, 8)] for j in range(n_words)], lens)

    def __len__(self) -> int:
        return len(self.lens)

    def take(self, index: np.ndarray) -> _Keys:
        return _Keys([w[index] for w in self.words], self.lens[index])

    @staticmethod
    def concat(parts: list[_Keys]) -> _Keys:
        n_words = max(len(p.words) for p in parts)
        return _Keys([np.concatenate([p.words[j] if j < len(p.words) else np.zeros(len(p), np.uint64)
                                      for p in parts]) for j in range(n_words)],
                     np.concatenate([p.lens for p in parts]))

    def unique(self) -> tuple[np.ndarray, np.ndarray]:
        """``(first, inverse)``: the index of one occurrence of each distinct id, and each id's
        number among those. Sorts 64-bit hashes, then checks every id against its group's first;
        on a collision it sorts the words themselves (exact, slower)."""
        columns = [*self.words, self.lens]
        hashed = _hash(self)
        first, inverse = _runs(np.argsort(hashed), [hashed])
        same = first[inverse]
        if all(np.array_equal(c[same], c) for c in columns):
            return first, inverse
        return _runs(np.lexsort(columns[::-1]), columns)

    def distinct(self) -> _Distinct:
        """The distinct ids and each id's number among them."""
        first, inverse = self.unique()
        return self.take(first), inverse

    def decode(self) -> list[str]:
        """The ids as strings."""
        width = 8 * len(self.words)
        cells = np.full((len(self), width + 1), ord(_SEP), dtype=np.uint8)  # each id, then a separator
        cells[:, :width] = np.stack(self.words, axis=1).astype("<u8").view(np.uint8)
        keep = np.arange(width + 1) < self.lens[:, None]
        keep[:, width] = True
        text = cells[keep].tobytes()
        ids = text[:-1].decode("utf-8", "surrogatepass").split(_SEP)
        if len(ids) == len(self):
            return ids
        ends = np.cumsum(self.lens + 1).tolist()  # an id holds the separator: cut at the lengths
        return [text[a:b - 1].decode("utf-8", "surrogatepass") for a, b in zip([0, *ends][:-1], ends, strict=True)]

    def byte_order(self) -> np.ndarray:
        """The order that sorts the ids as strings: UTF-8 bytes sort as the code points do, and
        zero padding sorts first, so the words read big-endian, then the lengths, decide."""
        return np.lexsort([self.lens, *(w.astype("<u8").view(">u8") for w in reversed(self.words))])


_Distinct = tuple[_Keys, np.ndarray]
_Chunk = tuple[_Distinct, _Distinct, np.ndarray, np.ndarray, np.ndarray]  # what _read_chunks yields


def _hash(keys: _Keys) -> np.ndarray:
    h = keys.lens.astype(np.uint64)
    for word in keys.words:
        h ^= word
        h ^= h >> np.uint64(31)
        h *= _MIX[0]
        h ^= h >> np.uint64(29)
        h *= _MIX[1]
    return h


def _runs(order: np.ndarray, columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """For ``order`` sorting rows of ``columns`` so that equal rows are adjacent: the first index
    of each run of equal rows, and each row's run number."""
    new = np.zeros(len(order), dtype=bool)
    new[:1] = True
    for column in columns:
        ordered = column[order]
        new[1:] |= ordered[1:] != ordered[:-1]
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    return order[new], inverse


class _Vocab:
    """The ids of one column, read chunk by chunk, and their canonical vocabulary.

    Each chunk keeps only its distinct ids (found by numpy from their bytes) and each event's
    number among them; ``codes`` merges the chunks the same way, so Python builds strings only
    for the distinct ids.
    """

    def __init__(self) -> None:
        self._distinct: list[_Keys] = []
        self._inverse: list[np.ndarray] = []

    def add(self, distinct: _Keys, inverse: np.ndarray) -> None:
        """One chunk's ids, as ``_Keys.distinct`` gives them."""
        self._distinct.append(distinct)
        self._inverse.append(inverse)

    def codes(self, fixed: Sequence[str] = ()) -> tuple[list[str], np.ndarray]:
        """The vocabulary (the ``fixed`` ids in their order, then the others sorted) and every id
        added, in order, as its index there."""
        known = list(dict.fromkeys(fixed))
        parts = [_Keys.of(known), *self._distinct]
        keys = _Keys.concat(parts)
        first, inverse = keys.unique()
        # each distinct id's place in the vocabulary: a fixed id's own, the others after those, sorted
        place = np.full(len(first), -1, dtype=np.int64)
        place[inverse[: len(known)]] = np.arange(len(known))
        others = np.flatnonzero(place < 0)
        rest = keys.take(first[others])
        ranked = rest.byte_order()
        place[others[ranked]] = np.arange(len(known), len(first))
        index = place[inverse].astype(np.int32)
        starts = np.cumsum([len(part) for part in parts]).tolist()  # where each chunk's ids begin
        codes = [index[start + inv] for inv, start in zip(self._inverse, starts, strict=False)]
        return known + rest.take(ranked).decode(), np.concatenate(codes) if codes else np.zeros(0, np.int32)


def _empty() -> list[np.ndarray]:
    return [np.zeros(0, np.int8), np.zeros(0, np.int32), np.zeros(0, np.float64)]


def dedup_mask(
    users: np.ndarray, items: np.ndarray, types: np.ndarray, ts: np.ndarray, window: float,
    *, presorted: bool = False,
) -> np.ndarray:
    """False for an event repeating the previous one (same visitor, item, type) within ``window`` s.

    ``presorted``: the arrays are already sorted by (user, item, type, ts).
    """
    keep = np.ones(len(users), dtype=bool)
    if window <= 0 or len(users) < 2:
        return keep
    order = np.arange(len(users)) if presorted else np.lexsort((ts, types, items, users))
    u, i, t, s = users[order], items[order], types[order], ts[order]
    repeat = (u[1:] == u[:-1]) & (i[1:] == i[:-1]) & (t[1:] == t[:-1]) & (s[1:] - s[:-1] < window)
    keep[order[1:][repeat]] = False
    return keep


def decay(
    ts: np.ndarray, half_life_days: float, reference: float | None = None, floor: float = 0.0
) -> np.ndarray:
    """max(0.5 ** (age / half-life), floor), age counted back from ``reference`` (default: the
    newest event). The floor keeps years-old interactions from vanishing to zero."""
    if half_life_days <= 0 or not len(ts):
        return np.ones(len(ts), dtype=np.float32)
    ref = float(ts.max()) if reference is None else reference
    age = np.maximum(ref - ts, 0.0)
    return np.maximum(np.exp2(-age / (half_life_days * DAY)), floor).astype(np.float32)


def sessions(users: np.ndarray, ts: np.ndarray, gap: float) -> np.ndarray:
    """A session number per event: a visitor's events split where they pause longer than ``gap``."""
    if not len(users):
        return np.zeros(0, dtype=np.int64)
    order = lex_order(np.asarray(users, dtype=np.int64), ts)
    u, s = users[order], ts[order]
    new = np.ones(len(u), dtype=bool)
    new[1:] = (u[1:] != u[:-1]) | (s[1:] - s[:-1] > gap)
    out = np.empty(len(u), dtype=np.int64)
    out[order] = np.cumsum(new) - 1
    return out


def cell_starts(users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Where each (user, item) run begins in arrays sorted by user, then item."""
    new = np.ones(len(users), dtype=bool)
    new[1:] = (users[1:] != users[:-1]) | (items[1:] != items[:-1])
    return np.flatnonzero(new)


def _csr(data: np.ndarray, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sparse.csr_matrix:
    """A CSR matrix from cells already sorted by row, then column, without duplicates."""
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    return sparse.csr_matrix((data.astype(np.float32), cols.astype(np.int32), indptr), shape=shape)


def holdout_split(
    inter: Interactions, fraction: float, min_items: int
) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """Time split: each user's latest ``fraction`` of distinct items (ceil) becomes the test set.

    An item's time is the user's last interaction with it. Users with fewer than
    ``min_items`` distinct items stay entirely in training. Returns ``(train, test)`` matrices
    of the same shape; the test matrix holds 1 per held-out item.
    """
    starts = cell_starts(inter.users, inter.items)
    shape = (inter.n_users, inter.n_items)
    if not len(starts):
        return inter.matrix(), sparse.csr_matrix(shape, dtype=np.float32)
    marks = np.zeros(len(inter.users), dtype=np.int64)
    marks[starts] = 1
    cell_of_event = np.cumsum(marks) - 1
    last_ts = np.maximum.reduceat(inter.ts, starts)
    cell_user, cell_item = inter.users[starts], inter.items[starts]
    by_user = lex_order(cell_user.astype(np.int64), -last_ts)
    counts = np.bincount(cell_user, minlength=inter.n_users)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.empty(len(starts), dtype=np.int64)
    rank[by_user] = np.arange(len(starts)) - first[cell_user[by_user]]
    held = np.where(counts >= max(min_items, 2), np.ceil(counts * fraction), 0).astype(np.int64)
    in_test = rank < held[cell_user]
    train = inter.matrix(mask=~in_test[cell_of_event])
    test = _csr(np.ones(int(in_test.sum()), np.float32), cell_user[in_test], cell_item[in_test], shape)
    return train, test


def describe(inter: Interactions) -> dict[str, Any]:
    """Counts for the run record and the manifest."""
    first, last = inter.time_range()
    return {
        "events_read": inter.events_read,
        "interactions": len(inter.users),
        "users": inter.n_users,
        "items": inter.n_items,
        "catalog_items": len(inter.catalog),
        "first_event_ts": first,
        "last_event_ts": last,
        "density": len(inter.users) / (inter.n_users * inter.n_items)
        if inter.n_users and inter.n_items
        else 0.0,
    }
