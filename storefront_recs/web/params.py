"""Numbers in request parameters: ASCII only.

Python's ``int`` and ``float`` read any Unicode digit ("５" is 5, "٢" is 2), spaces around
the number, underscores and "inf"; a query string means none of these.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import fields

ASCII_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
ASCII_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


class AsciiInteger(fields.Integer):
    """An integer written with ASCII digits (an optional sign, nothing else)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str) or not ASCII_INTEGER.fullmatch(value):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class AsciiFloat(fields.Float):
    """A finite decimal number written with ASCII digits."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str) or not ASCII_DECIMAL.fullmatch(value):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


def ascii_int(text: str | None, default: int) -> int:
    """``text`` as an int when it is ASCII digits (and a sign), else ``default``."""
    if text is None or not ASCII_INTEGER.fullmatch(text):
        return default
    try:
        return int(text)
    except ValueError:  # thousands of digits
        return default
