"""The shop's catalogue: upserts, stock, removal and file imports."""

from .store import Catalog, UpsertResult

__all__ = ["Catalog", "UpsertResult"]
