"""The demo shop the README starts: seeded, trained, and showing recommendations."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from examples.demo_shop.app import create_app  # noqa: E402
from storefront_recs import db as dbmod  # noqa: E402


def test_demo_shop_seeds_trains_and_shows_widgets(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DEMO_INSTANCE", str(tmp_path))
    app = create_app({"RECS_EMBEDDED_SCHEDULER": False, "RECS_DATABASE_URI": f"sqlite:///{tmp_path / 'demo.sqlite3'}"})
    dbmod.upgrade(app.extensions["storefront_recs"].engine)
    runner = app.test_cli_runner()
    seeded = runner.invoke(args=["demo", "seed", "--users", "40"])
    assert seeded.exit_code == 0, seeded.output
    assert "catalogue: 300 items" in seeded.output
    trained = runner.invoke(args=["recs", "train"])
    assert trained.exit_code == 0, trained.output

    client = app.test_client()
    page = client.get("/p/sku-0003").get_data(as_text=True)
    assert 'data-recs-item-id="sku-0003"' in page
    similar = re.search(r'<section class="recs-widget recs-similar".*?</section>', page, re.S)
    assert similar is not None
    assert len(re.findall(r'data-recs-item="sku-\d+"', similar.group(0))) == 6
    assert "recs.min.js" in page and 'data-recs-widget="for-you"' in page

    # Checkout records the purchase on the server for the logged-in user.
    client.post("/login", data={"user_id": "alice"})
    client.post("/cart/add/sku-0007")
    assert "on its way" in client.post("/checkout").get_data(as_text=True)
    recs = app.extensions["storefront_recs"].recs
    with app.app_context():  # the demo uses Recs() + init_app, so calls need the app's context
        assert recs.recently_viewed(user_id="alice") == []  # a purchase is not a view
        for_you = [r.item_id for r in recs.for_you(user_id="alice", n=10)]
    assert "sku-0007" not in for_you and len(for_you) == 10
