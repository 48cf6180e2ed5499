"""HTML (tables, inlined CSS) and plain-text renderings of an email block.

Both come from host-overridable templates, ``storefront_recs/email/block.html`` (its
``<style>`` is inlined into ``style`` attributes by css-inline, then removed) and
``block.txt``. Catalogue text is escaped by Jinja's autoescaping of ``.html`` templates.
"""

from __future__ import annotations

from typing import Any

import css_inline
from flask import render_template

HTML_TEMPLATE = "storefront_recs/email/block.html"
TEXT_TEMPLATE = "storefront_recs/email/block.txt"
# No network: a template cannot make the inliner fetch a remote stylesheet.
_INLINER = css_inline.CSSInliner(keep_style_tags=False, keep_link_tags=False, load_remote_stylesheets=False)


def layout(columns: int, width: int) -> dict[str, int]:
    """Cell and image sizes for ``columns`` items per row in a ``width`` px wide block."""
    columns = max(1, columns)
    cell = width // columns
    return {"columns": columns, "width": width, "cell": cell, "image": cell - 24}


def rows_of(items: list[Any], columns: int) -> list[list[Any]]:
    return [items[start : start + columns] for start in range(0, len(items), columns)]


def render_html(items: list[Any], heading: str | None, columns: int, width: int, **extra: Any) -> str:
    sizes = layout(columns, width)
    html = render_template(HTML_TEMPLATE, rows=rows_of(items, sizes["columns"]), items=items, heading=heading,
                           **sizes, **extra)
    return str(_INLINER.inline_fragment(html, "")).strip()


def render_text(items: list[Any], heading: str | None, **extra: Any) -> str:
    return render_template(TEXT_TEMPLATE, items=items, heading=heading, **extra).strip() + "\n"
