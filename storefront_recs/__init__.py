"""storefront-recs: self-hosted, real-time recommendations for Flask shops.

The public names are imported lazily (as Flask-SQLAlchemy does), so ``import
storefront_recs.engine`` stays free of Flask and of the extension.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    ConfigurationError,
    ImportFileError,
    NotMigratedError,
    RecsError,
    ValidationError,
)

if TYPE_CHECKING:
    from .extension import Recs as Recs

    current_recs: Recs

_LAZY = {"Recs": "storefront_recs.extension", "EXTENSION_KEY": "storefront_recs.extension"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "current_recs":
        from flask import current_app
        from werkzeug.local import LocalProxy

        from .assembly import state_of

        proxy = LocalProxy(lambda: state_of(current_app).recs)
        globals()["current_recs"] = proxy
        return proxy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
