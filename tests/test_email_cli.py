"""``flask recs email-blocks``: the batch export for email service providers."""

from __future__ import annotations

import html
import json
from pathlib import Path

from conftest import make_app
from flask import Flask
from sqlalchemy import func, select

from storefront_recs.models import EmailSend

PUBLIC = "https://shop.example"


def shop(database_uri: str, tmp_path: Path, **config: object) -> Flask:
    app = make_app(database_uri, tmp_path, RECS_CATALOG_REFRESH_SECONDS=0, **config)
    items = [{"id": f"sku-{i}", "title": f"Thing {i}", "url": f"/p/sku-{i}", "image_url": f"/img/sku-{i}.png",
              "price": 10.0 + i, "category": "c"} for i in range(12)]
    app.extensions["storefront_recs"].recs.catalog.upsert(items)
    return app


def sends(app: Flask) -> int:
    with app.extensions["storefront_recs"].engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(EmailSend)).scalar_one())


def test_batch_export_writes_one_block_per_user_as_json_lines(database_uri: str, tmp_path: Path) -> None:
    app = shop(database_uri, tmp_path, RECS_PUBLIC_URL=PUBLIC)
    users = tmp_path / "users.txt"
    users.write_text("# weekly list\n" + "".join(f"user-{i}\n" for i in range(25)) + "\n\n")
    out = tmp_path / "blocks.jsonl"
    runner = app.test_cli_runner()
    args = ["recs", "email-blocks", "--users", str(users), "--campaign", "weekly", "--out", str(out), "-n", "3",
            "--utm", "source=newsletter", "--utm", "utm_medium=email"]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    assert "Email blocks" in result.output and "25 email blocks written" in result.output  # progress + summary
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["user_id"] for line in lines] == [f"user-{i}" for i in range(25)]
    for line in lines:
        assert line["campaign"] == "weekly" and len(line["items"]) == 3
        assert line["html"].startswith("<table") and 'style="' in line["html"] and "<style" not in line["html"]
        for item in line["items"]:
            assert item["click_url"].startswith(f"{PUBLIC}/recs/c/")
            assert item["click_url"].endswith("?utm_source=newsletter&utm_medium=email")
            assert html.escape(item["click_url"]) in line["html"] and item["click_url"] in line["text"]
            assert item["title"] in line["text"] and item["image_url"] == f"{PUBLIC}/img/{item['item_id']}.png"
    assert sends(app) == 75
    # The next run of the campaign sends other items; a preview records nothing.
    again = tmp_path / "again.jsonl"
    assert runner.invoke(args=[*args[:6], "--out", str(again), "-n", "3", "--preview"]).exit_code == 0
    first = {i["item_id"] for i in lines[0]["items"]}
    second = {i["item_id"] for i in json.loads(again.read_text().splitlines()[0])["items"]}
    assert not first & second and sends(app) == 75


def test_batch_export_needs_a_public_url(sqlite_uri: str, tmp_path: Path) -> None:
    app = shop(sqlite_uri, tmp_path)
    users = tmp_path / "users.txt"
    users.write_text("u1\n")
    result = app.test_cli_runner().invoke(args=["recs", "email-blocks", "--users", str(users), "--campaign", "w",
                                                "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code != 0 and "RECS_PUBLIC_URL" in result.output
    assert sends(app) == 0


def test_bad_utm_and_campaign_are_refused(sqlite_uri: str, tmp_path: Path) -> None:
    app = shop(sqlite_uri, tmp_path, RECS_PUBLIC_URL=PUBLIC)
    users = tmp_path / "users.txt"
    users.write_text("u1\n")
    base = ["recs", "email-blocks", "--users", str(users), "--out", str(tmp_path / "o.jsonl")]
    result = app.test_cli_runner().invoke(args=[*base, "--campaign", "w", "--utm", "nope"])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output
    result = app.test_cli_runner().invoke(args=[*base, "--campaign", "bad\ncampaign"])
    assert result.exit_code == 1 and "campaign" in result.output


def test_worker_processes_write_every_block_in_input_order(sqlite_uri: str, tmp_path: Path) -> None:
    app = shop(sqlite_uri, tmp_path, RECS_PUBLIC_URL=PUBLIC)
    ids = [f"p{i}" for i in range(430)]  # three chunks of people
    users = tmp_path / "users.txt"
    users.write_text("\n".join(ids))
    out = tmp_path / "blocks.jsonl"
    result = app.test_cli_runner().invoke(args=["recs", "email-blocks", "--users", str(users), "--campaign", "w",
                                                "--out", str(out), "-n", "2", "--workers", "2"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["user_id"] for line in lines] == ids
    assert all(len(line["items"]) == 2 and line["html"] for line in lines)
    assert sends(app) == 860
