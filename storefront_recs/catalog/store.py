"""Catalogue writes and reads: partial upserts, stock changes and removal."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError as SchemaError
from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import ValidationError, flatten_errors
from ..models import Item
from ..safe_input import text_problem
from .schemas import CatalogItemSchema

ITEM_COLUMNS = ("title", "url", "image_url", "price", "category", "description", "in_stock")


@dataclass
class UpsertResult:
    inserted: int = 0
    updated: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)


def item_to_dict(item: Item) -> dict[str, Any]:
    return {
        "id": item.id,
        "title": item.title,
        "url": item.url,
        "image_url": item.image_url,
        "price": item.price,
        "category": item.category,
        "description": item.description,
        "in_stock": item.in_stock,
        "active": item.active,
        "attributes": item.attributes or {},
        "updated_at": item.updated_at.isoformat(),
    }


class Catalog:
    """``recs.catalog``: the shop's items as recommendations need them."""

    def __init__(self, engine_getter: Callable[[], Engine]) -> None:
        self._engine = engine_getter

    def upsert(self, items: Iterable[Mapping[str, Any]], *, strict: bool = True) -> UpsertResult:
        """Insert or partially update items; omitted fields keep their stored values.

        With ``strict`` (the default) any invalid item raises :class:`ValidationError` and
        nothing is written; otherwise invalid items are reported in ``result.rejected``.
        """
        schema = CatalogItemSchema()
        result = UpsertResult()
        merged: dict[str, dict[str, Any]] = {}
        for index, raw in enumerate(items):
            problem = text_problem(dict(raw)) if isinstance(raw, Mapping) else "an item must be a mapping"
            if problem is not None:
                result.rejected.append({"index": index, "reason": problem})
                continue
            try:
                loaded = schema.load(dict(raw))
            except (SchemaError, TypeError, ValueError) as exc:
                reason = flatten_errors(exc.messages) if isinstance(exc, SchemaError) else str(exc)
                result.rejected.append({"index": index, "reason": reason})
                continue
            previous = merged.get(loaded["id"], {})
            attributes = {**previous.get("attributes", {}), **loaded.get("attributes", {})}
            merged[loaded["id"]] = {**previous, **loaded, **({"attributes": attributes} if attributes else {})}
        if strict and result.rejected:
            raise ValidationError(
                f"{len(result.rejected)} invalid catalogue item(s); nothing was written",
                {r["index"]: r["reason"] for r in result.rejected},
            )
        if merged:
            try:
                self._write(merged, result)
            except IntegrityError:  # another process inserted one of these ids concurrently
                result.inserted = result.updated = 0
                self._write(merged, result)
        return result

    def _write(self, merged: dict[str, dict[str, Any]], result: UpsertResult) -> None:
        now = utcnow()
        with self._engine().begin() as conn:
            existing = {
                row.id: row.attributes
                for row in conn.execute(
                    select(Item.id, Item.attributes).where(Item.id.in_(list(merged)))
                )
            }
            new_rows = []
            for item_id, data in merged.items():
                if item_id in existing:
                    values = {k: data[k] for k in ITEM_COLUMNS if k in data}
                    if "attributes" in data:
                        values["attributes"] = {**(existing[item_id] or {}), **data["attributes"]}
                    conn.execute(
                        update(Item).where(Item.id == item_id).values(**values, active=True, updated_at=now)
                    )
                    result.updated += 1
                else:
                    new_rows.append(
                        {
                            "id": item_id,
                            **{k: data.get(k) for k in ITEM_COLUMNS},
                            "in_stock": data.get("in_stock", True),
                            "attributes": data.get("attributes"),
                            "active": True,
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
            if new_rows:
                conn.execute(insert(Item), new_rows)
                result.inserted += len(new_rows)

    def set_in_stock(self, item_ids: Iterable[str], in_stock: bool) -> int:
        """Mark items in or out of stock; returns how many rows changed."""
        return self._set(item_ids, in_stock=in_stock)

    def remove(self, item_ids: Iterable[str]) -> int:
        """Take items off the catalogue. Their events are kept; they are never recommended."""
        return self._set(item_ids, active=False)

    def _set(self, item_ids: Iterable[str], **values: Any) -> int:
        ids = list(item_ids)
        if not ids:
            return 0
        with self._engine().begin() as conn:
            return conn.execute(
                update(Item).where(Item.id.in_(ids)).values(**values, updated_at=utcnow())
            ).rowcount

    def get(self, item_id: str) -> dict[str, Any] | None:
        with Session(self._engine()) as session:
            item = session.get(Item, item_id)
            return None if item is None else item_to_dict(item)

    def count(self, *, available_only: bool = False) -> int:
        stmt = select(func.count()).select_from(Item)
        if available_only:
            stmt = stmt.where(Item.active.is_(True), Item.in_stock.is_(True))
        with self._engine().connect() as conn:
            return int(conn.execute(stmt).scalar_one())
