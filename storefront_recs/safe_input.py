"""Untrusted text and JSON, made safe to store: bounded nesting, no NUL, valid Unicode.

Both databases refuse some text that Python holds happily: PostgreSQL any NUL character,
either driver a lone UTF-16 surrogate (``"sku\\ud800"``, which JSON can spell). Such text is
rejected where it comes in, with a reason, so it never reaches a transaction it could abort.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

# A JSON string (closed), to skip brackets written inside strings when measuring nesting.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
# NUL, and UTF-16 surrogates (valid pairs are joined into one code point by json.loads).
_BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")
# Integers longer than this are read as floats (then refused by range checks), never as
# Python ints of thousands of digits (int() refuses 4,300 and more digits: the whole body).
_MAX_INT_DIGITS = 30


class JSONDepthError(ValueError):
    """A JSON document nested deeper than allowed."""


def json_depth(body: bytes | str, stop_at: int) -> int:
    """How deeply ``body`` nests arrays and objects, counting no further than ``stop_at`` + 1.

    Brackets inside strings do not count. Cheap: only the brackets are walked in Python.
    """
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_at:
                    break
        else:
            depth -= 1
    return deepest


def _read_int(text: str) -> int | float:
    return int(text) if len(text) <= _MAX_INT_DIGITS else float(text)


def parse_json(body: bytes | str, max_depth: int) -> Any:
    """``json.loads`` that refuses nesting deeper than ``max_depth`` (:class:`JSONDepthError`)
    instead of exhausting the stack. Raises ``ValueError`` for anything that is not JSON."""
    if json_depth(body, max_depth) > max_depth:
        raise JSONDepthError(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(body, parse_int=_read_int)
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise JSONDepthError(f"JSON nested deeper than {max_depth} levels") from None


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON-like value, keys included (iteratively: no recursion)."""
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, str):
            yield current
        elif isinstance(current, dict):
            for key, item in current.items():
                if isinstance(key, str):
                    yield key
                stack.append(item)
        elif isinstance(current, list | tuple):
            stack.extend(current)


def has_bad_character(text: str) -> bool:
    """True when ``text`` holds a NUL or a lone surrogate (fast check for bulk imports)."""
    return _BAD_CHARACTER.search(text) is not None


def text_problem(value: Any) -> str | None:
    """Why ``value`` (a string or JSON-like structure) cannot be stored as text, or None."""
    for text in _strings(value):
        found = _BAD_CHARACTER.search(text)
        if found is not None:
            if found.group() == "\x00":
                return "text must not contain NUL characters"
            return "text must be valid Unicode (a lone surrogate such as \\ud800 is not)"
    return None
