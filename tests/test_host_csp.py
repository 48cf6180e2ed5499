"""Flask-Talisman with a strict policy, without a browser: the snippet's tags carry the nonce of
the policy the same response sends, and none of our pages needs an inline style or script."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser.test_browser_csp import talisman_shop
from flask import g, render_template_string


@pytest.mark.parametrize("order", ["talisman-first", "recs-first"])
def test_the_snippet_takes_the_nonce_of_the_responses_policy(tmp_path: Path, order: str) -> None:
    app = talisman_shop(tmp_path, order)
    page = app.test_client().get("/p/sku-1")
    policy = page.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce and "unsafe-inline" not in policy
    tags = re.findall(r"<script[^>]*>", page.text)
    assert tags[0] == f'<script nonce="{nonce.group(1)}">'  # the queue stub
    assert f'nonce="{nonce.group(1)}"' in tags[1] and "recs.min.js" in tags[1]


def test_a_shop_of_its_own_csp_gives_the_nonce_in_g(sqlite_app) -> None:  # type: ignore[no-untyped-def]
    with sqlite_app.test_request_context("/"):
        g.csp_nonce = "n0nce"
        html = render_template_string("{{ recs_snippet() }}")
    assert html.count('nonce="n0nce"') == 2


def test_our_pages_need_no_inline_style_or_script(tmp_path: Path) -> None:
    app = talisman_shop(tmp_path, "recs-first")
    app.extensions["storefront_recs"].recs.admin_check(lambda: True)
    client = app.test_client()
    pages = [client.get("/recs/admin/", headers={"Accept": "text/html"}), client.get("/recs/c/not-a-token"),
             client.get("/p/sku-1")]
    for page in pages:
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", page.text), page.request.path
    admin_css = client.get("/recs/static/storefront_recs/admin.css")
    assert admin_css.status_code == 200 and b".recs-chart" in admin_css.data
    assert "style-src 'self'" in pages[0].headers["Content-Security-Policy"]
