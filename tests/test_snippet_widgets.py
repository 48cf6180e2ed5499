"""recs_widget(): widgets rendered on the server from the serving layer, overridable by the shop."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_app
from flask import Flask, render_template_string
from minimal_app import create_app

from storefront_recs import Recs

XSS = "<img src=x onerror=alert(1)>"


def render(app: Flask, source: str) -> str:
    with app.test_request_context("/"):
        return render_template_string(source)


@pytest.fixture
def recs_of(sqlite_app: Flask) -> Recs:
    return sqlite_app.extensions["storefront_recs"].recs  # type: ignore[no-any-return]


@pytest.fixture
def stocked(sqlite_app: Flask, recs_of: Recs) -> Flask:
    recs_of.catalog.upsert([
        {"id": "sku-1", "title": XSS, "url": "javascript:alert(2)", "image_url": "/img/1.png", "price": 3.5},
        {"id": "sku-2", "title": "Green tea", "url": "/p/sku-2", "image_url": "javascript:alert(3)"},
    ])
    return sqlite_app


def test_a_server_widget_lists_items_as_text_with_tokens(stocked: Flask) -> None:
    html = render(stocked, '{{ recs_widget("trending", n=4, title="Popular now") }}')
    assert 'data-recs-widget="trending"' in html and 'aria-label="Popular now"' in html
    assert html.count('class="recs-item"') == 2 and html.count("data-recs-token=") == 2
    assert XSS not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "javascript:" not in html
    assert '<img class="recs-image" src="/img/1.png" alt="&lt;img src=x onerror=alert(1)&gt;" loading="lazy"' in html
    assert 'href="/p/sku-2"' in html and "3.50" in html


def test_a_widget_with_nothing_to_show_renders_nothing(sqlite_app: Flask) -> None:
    assert render(sqlite_app, '{{ recs_widget("trending") }}').strip() == ""


def test_widget_arguments_are_checked(stocked: Flask) -> None:
    with pytest.raises(ValueError, match="unknown widget kind"):
        render(stocked, '{{ recs_widget("bestsellers") }}')
    with pytest.raises(ValueError, match="needs an item_id"):
        render(stocked, '{{ recs_widget("similar") }}')


def test_the_shop_can_override_the_widget_template(sqlite_uri: str, tmp_path: Path) -> None:
    folder = tmp_path / "templates" / "storefront_recs"
    folder.mkdir(parents=True)
    (folder / "widget.html").write_text("{% for item in items %}<b>{{ item.title }}</b>{% endfor %}")
    app = make_app(sqlite_uri, tmp_path)
    app.template_folder = str(tmp_path / "templates")
    app.extensions["storefront_recs"].recs.catalog.upsert([{"id": "sku-1", "title": XSS}])
    assert render(app, '{{ recs_widget("trending") }}') == "<b>&lt;img src=x onerror=alert(1)&gt;</b>"


def test_a_widget_that_cannot_be_served_renders_nothing_and_logs(
    sqlite_uri: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app({"RECS_DATABASE_URI": sqlite_uri, "RECS_MODEL_DIR": str(tmp_path / "models")})
    assert render(app, '{{ recs_widget("trending") }}<p>the page</p>') == "<p>the page</p>"  # not migrated
    assert "the trending widget could not be rendered" in caplog.text
