"""Errors raised by storefront-recs. All derive from :class:`RecsError`."""

from __future__ import annotations

from typing import Any


class RecsError(Exception):
    """Base class of every storefront-recs error."""


class ConfigurationError(RecsError):
    """The extension is set up wrongly (a second init_app, a bad setting, ...)."""


class NotMigratedError(RecsError):
    """The recs tables are missing or out of date: run ``flask recs db upgrade``."""


class ValidationError(RecsError):
    """Input that cannot be stored; ``errors`` says which field and why."""

    def __init__(self, message: str, errors: dict | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}


class ImportFileError(RecsError):
    """An import file cannot be read at all (unknown format, missing header columns)."""


def flatten_errors(messages: Any, prefix: str = "") -> str:
    """Marshmallow's nested error dict -> 'field: message; other.field: message'."""
    if isinstance(messages, dict):
        parts = []
        for key, value in messages.items():
            name = prefix if key == "_schema" else (f"{prefix}.{key}" if prefix else str(key))
            parts.append(flatten_errors(value, name))
        return "; ".join(parts)
    if isinstance(messages, list):
        text = " ".join(str(m) for m in messages if not isinstance(m, dict | list))
        nested = [flatten_errors(m, prefix) for m in messages if isinstance(m, dict | list)]
        return "; ".join(filter(None, [f"{prefix}: {text}" if prefix and text else text, *nested]))
    return f"{prefix}: {messages}" if prefix else str(messages)
