"""storefront-recs: self-hosted, real-time recommendations for Flask shops."""

from flask import current_app
from werkzeug.local import LocalProxy

from .errors import (
    ConfigurationError,
    ImportFileError,
    NotMigratedError,
    RecsError,
    ValidationError,
)
from .extension import EXTENSION_KEY, Recs

current_recs: "Recs" = LocalProxy(lambda: current_app.extensions[EXTENSION_KEY].recs)  # type: ignore[assignment]

__all__ = [
    "ConfigurationError",
    "ImportFileError",
    "NotMigratedError",
    "Recs",
    "RecsError",
    "ValidationError",
    "current_recs",
]
__version__ = "0.1.0"
