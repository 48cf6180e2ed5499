"""Errors raised by storefront-recs. All derive from :class:`RecsError`."""

from __future__ import annotations


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
