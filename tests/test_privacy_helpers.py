"""Helpers shared by the privacy tests (no tests here): read every recs_* table in full."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import MetaData, select

from storefront_recs import db as dbmod


def all_rows(app: Flask) -> dict[str, list[dict[str, Any]]]:
    """Every row of every recs_* table actually in the database (reflected, not from models)."""
    engine = app.extensions["storefront_recs"].engine
    meta = MetaData()
    meta.reflect(engine, only=lambda name, _: name.startswith("recs_") and name != dbmod.VERSION_TABLE)
    with engine.connect() as conn:
        return {
            name: [dict(row._mapping) for row in conn.execute(select(table))]
            for name, table in meta.tables.items()
        }


def database_text(app: Flask) -> str:
    """The whole recs database as one string, to search for things that must not be stored."""
    return "\n".join(f"{name}: {row!r}" for name, rows in all_rows(app).items() for row in rows)


def rows_mentioning(app: Flask, needles: list[str]) -> list[str]:
    """``table: row`` for every row in which any needle appears in any column."""
    found = []
    for name, rows in all_rows(app).items():
        for row in rows:
            text = repr(row)
            if any(needle in text for needle in needles):
                found.append(f"{name}: {text}")
    return found


def key_of(app: Flask, user_id: str) -> str:
    return str(app.extensions["storefront_recs"].user_key(user_id))
