"""The shop under real gunicorn workers, reached as nginx would reach it at
https://shop.example/shop/: through ProxyFix with X-Forwarded-Prefix, or with gunicorn's own
SCRIPT_NAME. The URLs, cookies and the origin check behave as in docs/integration.md."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask, render_template_string
from werkzeug.middleware.proxy_fix import ProxyFix

from storefront_recs import Recs
from storefront_recs import db as dbmod

HERE = Path(__file__).resolve().parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
NGINX = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example", "X-Forwarded-For": "203.0.113.9",
         "X-Forwarded-Prefix": "/shop"}
PAGE = "<!doctype html><html><head>{{ recs_snippet() }}</head><body>{{ recs_widget('trending', n=2) }}</body></html>"


def create_shop() -> Flask:
    """The app gunicorn serves (``test_host_gunicorn:create_shop()``); RECS_* come from the env."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "shop-secret"
    app.config.update({k: v for k, v in os.environ.items() if k.startswith("RECS_")})
    Recs(app)
    if os.environ.get("SHOP_PROXY_FIX") == "1":
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_prefix=1)  # type: ignore[method-assign]

    @app.get("/p/<item_id>")
    def product(item_id: str) -> str:
        return render_template_string(PAGE)

    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(params=["proxyfix", "script-name"])
def gunicorn_shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(base URL to request, mode): two gunicorn workers on a migrated, seeded SQLite shop."""
    env = {**os.environ, "RECS_DATABASE_URI": f"sqlite:///{tmp_path / 'recs.sqlite3'}",
           "RECS_MODEL_DIR": str(tmp_path / "models")}
    os.environ.update({k: env[k] for k in ("RECS_DATABASE_URI", "RECS_MODEL_DIR")})
    try:
        app = create_shop()
    finally:
        for key in ("RECS_DATABASE_URI", "RECS_MODEL_DIR"):
            os.environ.pop(key)
    dbmod.upgrade(app.extensions["storefront_recs"].engine)
    with app.app_context():
        recs: Recs = app.extensions["storefront_recs"].recs
        recs.catalog.upsert([{"id": f"sku-{i}", "title": f"Item {i}", "url": f"/shop/p/sku-{i}"} for i in range(3)])
        for i in range(3):
            recs.track("view", user_id=f"u{i}", item_id=f"sku-{i % 2}")
    app.extensions["storefront_recs"].engine.dispose()

    port = free_port()
    if request.param == "proxyfix":
        env["SHOP_PROXY_FIX"] = "1"
        base = f"http://127.0.0.1:{port}"  # nginx strips /shop and says so in X-Forwarded-Prefix
    else:
        env["SCRIPT_NAME"] = "/shop"  # gunicorn moves /shop from the path to SCRIPT_NAME
        base = f"http://127.0.0.1:{port}/shop"
    process = subprocess.Popen(
        [str(GUNICORN), "-w", "2", "-b", f"127.0.0.1:{port}", "--pythonpath", str(HERE), "--log-level", "warning",
         "test_host_gunicorn:create_shop()"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(base + "/recs/health", timeout=10)
                break
            except requests.RequestException:  # not listening yet, or its workers still importing
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read().decode() if process.stdout else ""
                    pytest.fail(f"gunicorn did not start: {output}")
                time.sleep(0.1)
        yield base, request.param
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_urls_cookies_and_origin_check_under_gunicorn_behind_a_prefix(gunicorn_shop: tuple[str, str]) -> None:
    base, mode = gunicorn_shop
    browser = requests.Session()
    # nginx: TLS ended, the real host and scheme passed on (and the prefix, with ProxyFix).
    headers = NGINX if mode == "proxyfix" else {"Host": "shop.example"}
    page = browser.get(base + "/p/sku-1", headers=headers)
    assert page.status_code == 200
    assert re.search(r'<script async src="/shop/recs/static/storefront_recs/recs\.min\.js\?v=\w+"', page.text)
    assert 'data-recs-api="/shop/recs/api/v1"' in page.text
    assert re.findall(r'href="([^"]+)"', page.text) and all(
        link.startswith("/shop/p/") for link in re.findall(r'href="([^"]+)"', page.text))
    cookie = page.headers["Set-Cookie"]
    assert "recs_aid=" in cookie and "Path=/shop" in cookie
    assert ("Secure" in cookie) == (mode == "proxyfix")  # only ProxyFix told the app about https
    origin = "https://shop.example" if mode == "proxyfix" else "http://shop.example"

    event = {"event_id": str(uuid.uuid4()), "type": "add_to_cart", "item_id": "sku-1"}
    post_headers = {**headers, "Cookie": f"recs_aid={browser.cookies.get('recs_aid')}"}
    accepted = requests.post(base + "/recs/api/v1/events", json=event, headers={**post_headers, "Origin": origin})
    assert accepted.status_code == 200 and accepted.json()["accepted"] == 1
    refused = requests.post(base + "/recs/api/v1/events", json={**event, "event_id": str(uuid.uuid4())},
                            headers={**post_headers, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert refused.status_code == 403 and refused.json()["refused"] == "cross-site"
