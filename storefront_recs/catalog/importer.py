"""``flask recs import-catalog FILE``: CSV or JSONL, extra columns kept as attributes."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..importing import ImportReport, counting_lines, iter_records, require_columns
from .schemas import ITEM_FIELDS
from .store import Catalog

BOOLEAN_TEXT = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def record_to_item(record: dict[str, Any]) -> dict[str, Any]:
    """A file record -> an upsert dict. Empty CSV cells mean "not given" (partial update)."""
    item: dict[str, Any] = {}
    attributes: dict[str, Any] = dict(record.get("attributes") or {}) if isinstance(record.get("attributes"), dict) else {}
    for key, value in record.items():
        if value is None or value == "" or key == "attributes":
            continue
        if key in ITEM_FIELDS:
            if key == "in_stock" and isinstance(value, str):
                value = BOOLEAN_TEXT.get(value.strip().lower(), value)
            item[key] = value
        else:
            attributes[str(key)] = value
    if attributes:
        item["attributes"] = attributes
    return item


def import_catalog(
    catalog: Catalog,
    path: str,
    batch_size: int = 1000,
    on_progress: Callable[[int], None] = lambda _: None,
) -> ImportReport:
    """Stream the file into the catalogue in batches; bad lines are reported, good ones kept."""
    # Bytes that are not UTF-8 become lone surrogates: their lines are rejected one by one.
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        require_columns(path, handle, ("id",))
        return import_catalog_records(catalog, iter_records(counting_lines(handle, on_progress), path), batch_size)


def import_catalog_records(
    catalog: Catalog,
    records: Iterable[tuple[int, dict[str, Any] | None, str | None]],
    batch_size: int = 1000,
) -> ImportReport:
    """Upsert ``(number, record, error)`` triples in batches (a file's lines or a feed's items)."""
    report = ImportReport()
    batch: list[dict[str, Any]] = []
    lines: list[int] = []

    def flush() -> None:
        result = catalog.upsert(batch, strict=False)
        report.stored += result.inserted + result.updated
        for rejected in result.rejected:
            report.bad(lines[rejected["index"]], rejected["reason"])
        batch.clear()
        lines.clear()

    for number, record, error in records:
        report.read += 1
        if error is not None or record is None:
            report.bad(number, error or "unreadable")
            continue
        batch.append(record_to_item(record))
        lines.append(number)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return report
