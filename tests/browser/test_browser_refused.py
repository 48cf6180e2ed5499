"""A shop behind a proxy that hides the real host (no ProxyFix, no RECS_PUBLIC_URL): the event
endpoint sees a foreign Origin and refuses the snippet's POSTs with 403. The snippet drops the
refused batch (sending it again cannot help) and says why in the console; RECS_PUBLIC_URL fixes it."""

from __future__ import annotations

from typing import Any

from .conftest import LiveShop, goto
from .test_browser_tracking import stored_queue


def hide_the_host(shop: LiveShop) -> None:
    """What a proxy without `proxy_set_header Host` does: the app sees the backend's address."""
    inner = shop.app.wsgi_app

    def behind_proxy(environ: dict[str, Any], start_response: Any) -> Any:
        environ["HTTP_HOST"] = "backend.internal:8000"
        return inner(environ, start_response)

    shop.app.wsgi_app = behind_proxy  # type: ignore[method-assign]


def test_a_refused_batch_is_dropped_with_a_console_warning_until_the_origin_is_configured(
    shop: LiveShop, page: Any
) -> None:
    hide_the_host(shop)
    with (page.expect_console_message(lambda m: m.type == "warning", timeout=15000) as warning,
          page.expect_response(lambda r: r.url.endswith("/recs/api/v1/events")) as answer):
        goto(page, f"{shop.url}/p/sku-1")
    assert answer.value.status == 403
    text = warning.value.text
    assert "/events refused, HTTP 403" in text and "RECS_ALLOWED_ORIGINS" in text
    assert stored_queue(page) == []  # dropped, not kept for a retry
    assert shop.events() == []

    shop.app.config["RECS_PUBLIC_URL"] = shop.url  # the shop says where it really is
    with page.expect_response(lambda r: r.url.endswith("/recs/api/v1/events")) as answer:
        page.evaluate("recs('track', 'add_to_cart', {item_id: 'sku-1'}); recs('flush')")
    assert answer.value.status == 200
    assert [e.item_id for e in shop.events("add_to_cart")] == ["sku-1"]
