"""Alembic migrations of the recs tables (installed as ``storefront_recs.migrations``)."""
