"""The snippet's server side: the tags recs_snippet() writes, the consent endpoint, URL safety.
What the script does in a browser is tested in tests/browser/."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import make_app, new_event_id
from flask import Flask, render_template_string
from flask.testing import FlaskClient
from sqlalchemy import select

from storefront_recs.models import Event
from storefront_recs.tracking.identity import read_anonymous_cookie
from storefront_recs.web.snippet import STUB, safe_url

STATIC = Path(__file__).resolve().parent.parent / "storefront_recs/static/storefront_recs/recs.min.js"


def render(app: Flask, source: str) -> str:
    with app.test_request_context("/p/sku-1"):
        return render_template_string(source)


def test_snippet_writes_a_small_stub_and_an_async_tag_with_the_settings(sqlite_app: Flask) -> None:
    html = render(sqlite_app, "{{ recs_snippet() }}")
    stub = re.match(r"<script>.*?</script>", html)
    assert stub is not None and STUB in stub.group(0)
    assert len(stub.group(0).encode()) <= 300
    tag = html[stub.end():]
    assert re.fullmatch(r'<script async src="/recs/static/storefront_recs/recs\.min\.js\?v=[0-9a-f]{12}"[^>]*></script>', tag)
    assert 'data-recs-api="/recs/api/v1"' in tag
    assert 'data-recs-cookie="recs_consent"' in tag
    assert 'data-recs-dnt="respect"' in tag
    assert "data-recs-consent" not in tag


def test_snippet_reflects_privacy_settings_and_a_csp_nonce(sqlite_uri: str, tmp_path: Path) -> None:
    app = make_app(sqlite_uri, tmp_path, RECS_REQUIRE_CONSENT=True, RECS_RESPECT_DNT=False,
                   RECS_CONSENT_COOKIE="ok", RECS_URL_PREFIX="/shop/recs")
    html = render(app, "{{ recs_snippet(nonce='abc') }}")
    assert html.startswith('<script nonce="abc">')
    assert 'data-recs-consent="required"' in html
    assert 'data-recs-cookie="ok"' in html
    assert 'data-recs-api="/shop/recs/api/v1"' in html
    assert 'src="/shop/recs/static/' in html
    assert "data-recs-dnt" not in html


def test_snippet_is_written_once_per_page(sqlite_app: Flask) -> None:
    html = render(sqlite_app, "{{ recs_snippet() }}{{ recs_snippet() }}")
    assert html.count("<script") == 2


def shop_page(app: Flask) -> FlaskClient:
    """A client of ``app`` with one shop page that writes the snippet and a server widget."""
    @app.get("/p/<sku>")
    def product(sku: str) -> str:
        return render_template_string("{{ recs_snippet() }}{{ recs_widget('for-you') }}")

    return app.test_client()


def test_a_page_with_the_snippet_issues_the_visitor_cookie_its_requests_then_share(sqlite_app: Flask) -> None:
    client = shop_page(sqlite_app)
    page = client.get("/p/sku-1")
    issued = client.get_cookie("recs_aid")
    assert issued is not None and "HttpOnly" in page.headers["Set-Cookie"]
    assert "private" in page.headers["Cache-Control"]  # a per-visitor response is never shared
    client.post("/recs/api/v1/events", json={"event_id": new_event_id(), "type": "page_view"})
    assert client.get("/recs/api/v1/for-you").status_code == 200
    assert client.get_cookie("recs_aid").value == issued.value  # no second id for the same visitor
    assert "Set-Cookie" not in client.get("/p/sku-2").headers
    with sqlite_app.extensions["storefront_recs"].engine.connect() as conn:
        stored = conn.execute(select(Event.anonymous_id)).scalars().all()
    with sqlite_app.app_context():
        assert stored == [read_anonymous_cookie(issued.value)[0]]


def test_a_page_issues_no_cookie_without_consent_or_with_dnt(sqlite_uri: str, tmp_path: Path) -> None:
    assert "Set-Cookie" not in shop_page(make_app(sqlite_uri, tmp_path / "a")).get("/p/1", headers={"DNT": "1"}).headers
    gated_uri = f"sqlite:///{tmp_path / 'gated.sqlite3'}"
    gated = shop_page(make_app(gated_uri, tmp_path / "b", RECS_REQUIRE_CONSENT=True))
    assert "Set-Cookie" not in gated.get("/p/1").headers
    gated.set_cookie("recs_consent", "1")
    assert gated.get("/p/1").headers["Set-Cookie"].startswith("recs_aid=")


def test_the_built_script_is_served(sqlite_app: Flask) -> None:
    response = sqlite_app.test_client().get("/recs/static/storefront_recs/recs.min.js")
    assert response.status_code == 200
    assert response.data == STATIC.read_bytes()
    assert "javascript" in response.mimetype


def consent(client: FlaskClient, body: object, **headers: str):  # type: ignore[no-untyped-def]
    return client.post("/recs/api/v1/consent", json=body, headers=headers)


def test_consent_true_sets_the_consent_cookie(client: FlaskClient) -> None:
    response = consent(client, {"consent": True})
    assert response.status_code == 200
    assert response.get_json() == {"consent": True}
    cookie = client.get_cookie("recs_consent")
    assert cookie is not None and cookie.value == "1"
    assert "HttpOnly" not in response.headers["Set-Cookie"]  # the snippet reads it


def stored_events(app: Flask) -> list[Event]:
    with app.extensions["storefront_recs"].engine.connect() as conn:
        return list(conn.execute(select(Event)).all())  # type: ignore[arg-type]


def test_consent_false_forgets_the_anonymous_id(app: Flask, client: FlaskClient) -> None:
    client.post("/recs/api/v1/events", json={"event_id": new_event_id(), "type": "view", "item_id": "sku-1"})
    assert client.get_cookie("recs_aid") is not None
    other = app.test_client()
    other.post("/recs/api/v1/events", json={"event_id": new_event_id(), "type": "view", "item_id": "sku-2"})
    response = consent(client, {"consent": False})
    assert response.status_code == 200
    assert client.get_cookie("recs_aid") is None
    assert [e.item_id for e in stored_events(app)] == ["sku-2"]  # only the other visitor's history
    cookie = client.get_cookie("recs_consent")
    assert cookie is not None and cookie.value == "0"


def test_required_consent_gates_event_storage(sqlite_uri: str, tmp_path: Path) -> None:
    client = make_app(sqlite_uri, tmp_path, RECS_REQUIRE_CONSENT=True).test_client()

    def post() -> dict:
        return client.post("/recs/api/v1/events", json={"event_id": new_event_id(), "type": "page_view"}).get_json()

    assert post()["accepted"] == 0
    assert client.get_cookie("recs_aid") is None
    consent(client, {"consent": True})
    assert post()["accepted"] == 1
    consent(client, {"consent": False})
    assert post()["accepted"] == 0
    assert client.get_cookie("recs_aid") is None


def test_consent_rejects_bad_bodies_and_cross_site_requests(client: FlaskClient) -> None:
    assert consent(client, {"consent": "yes"}).status_code == 400
    assert client.post("/recs/api/v1/consent", data="{", content_type="text/plain").status_code == 400
    assert consent(client, {"consent": True}, **{"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert client.get_cookie("recs_consent") is None


def test_safe_url_allows_only_http_https_and_relative_links() -> None:
    assert safe_url("/p/sku-1") == "/p/sku-1"
    assert safe_url("https://shop.example/p/1") == "https://shop.example/p/1"
    assert safe_url("javascript:alert(1)") is None
    assert safe_url(" JavaScript:alert(1)") is None
    assert safe_url("java\tscript:alert(1)") is None
    assert safe_url("data:text/html,<b>x</b>") is None
    assert safe_url(None) is None
