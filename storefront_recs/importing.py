"""Shared pieces of the file importers: line-numbered reading with progress, bad-line reports."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from .errors import ImportFileError
from .safe_input import parse_json

MAX_RECORD_DEPTH = 32  # of a JSONL line: deeper ones are rejected, not a stack overflow
MAX_REPORTED = 1000


@dataclass
class ImportReport:
    """What an import did: rows stored, rows already there, and bad lines by line number."""

    read: int = 0
    stored: int = 0
    duplicates: int = 0
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    bad_count: int = 0

    def bad(self, line: int, reason: str) -> None:
        self.bad_count += 1
        if len(self.bad_lines) < MAX_REPORTED:
            self.bad_lines.append((line, reason))

    def summary(self) -> str:
        return (
            f"read {self.read} rows: stored {self.stored}, already present {self.duplicates}, "
            f"rejected {self.bad_count}"
        )


def counting_lines(handle: Iterable[str], on_progress: Callable[[int], None], every: int = 1000) -> Iterator[str]:
    """The file's lines, reporting the characters consumed every ``every`` lines and at the
    end (to drive a progress bar; a call per line would cost more than parsing the line)."""
    consumed = 0
    for number, line in enumerate(handle, start=1):
        consumed += len(line)
        if number % every == 0:
            on_progress(consumed)
            consumed = 0
        yield line
    if consumed:
        on_progress(consumed)


def is_jsonl(path: str) -> bool:
    return path.lower().endswith((".jsonl", ".ndjson", ".json"))


def iter_records(handle: Iterable[str], path: str) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """Yield ``(line_number, record, error)`` from a CSV (with header) or JSONL file."""
    if is_jsonl(path):
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = parse_json(line, MAX_RECORD_DEPTH)
            except ValueError as exc:
                yield number, None, f"not valid JSON: {exc}"
                continue
            if not isinstance(record, dict):
                yield number, None, "a line must be a JSON object"
                continue
            yield number, record, None
        return
    reader = csv.DictReader(handle)
    if not reader.fieldnames:
        raise ImportFileError(f"{path}: empty file or no CSV header")
    for record in reader:
        # DictReader puts surplus cells under the key None.
        if None in record:
            yield reader.line_num, None, "more cells than header columns"
            continue
        yield reader.line_num, record, None


def require_columns(path: str, handle: TextIO, required: tuple[str, ...]) -> None:
    """Fail early, before reading rows, when a CSV header lacks a required column."""
    if is_jsonl(path):
        return
    position = handle.tell()
    header = next(csv.reader(handle), None)
    handle.seek(position)
    missing = [name for name in required if name not in (header or [])]
    if missing:
        raise ImportFileError(f"{path}: header lacks required column(s) {', '.join(missing)}")
