"""``flask recs email-blocks``: one block per person as JSON lines, for an email service."""

from __future__ import annotations

import os
import sys
from typing import IO

import click
from flask import current_app
from flask.cli import with_appcontext

from ..errors import ConfigurationError, ValidationError
from .email_export import export_lines


def read_user_ids(handle: IO[str]) -> list[str]:
    """One user id per line; blank lines and lines starting with '#' are skipped."""
    return [line.strip() for line in handle if line.strip() and not line.lstrip().startswith("#")]


def parse_utm(values: tuple[str, ...]) -> dict[str, str]:
    utm: dict[str, str] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint="--utm")
        utm[key] = text
    return utm


@click.command("email-blocks")
@click.option("--users", "users_file", required=True, type=click.File("r", encoding="utf-8"),
              help="File with one user id per line ('-' for stdin).")
@click.option("--campaign", required=True, help="Campaign name (also what 'already sent' is checked against).")
@click.option("--out", "out_file", required=True, type=click.File("w", encoding="utf-8", lazy=False),
              help="JSON Lines file to write ('-' for stdout).")
@click.option("-n", "--items", "n", default=4, show_default=True, help="Items per block.")
@click.option("--utm", multiple=True, help="UTM parameter for the landing pages, e.g. --utm source=newsletter.")
@click.option("--heading", default="Picked for you", show_default=True, help="Heading of the block ('' for none).")
@click.option("--columns", default=2, show_default=True, help="Items per row.")
@click.option("--preview", is_flag=True, help="Do not record the items as sent.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: the number of CPUs, at most 4).")
@with_appcontext
def email_blocks_command(users_file: IO[str], campaign: str, out_file: IO[str], n: int, utm: tuple[str, ...],
                         heading: str, columns: int, preview: bool, workers: int | None) -> None:
    """Write an email block (html, text, items) per user to a JSON Lines file.

    Each line: {"user_id", "campaign", "items": [...], "html", "text"}. Needs RECS_PUBLIC_URL.
    """
    user_ids = read_user_ids(users_file)
    options = {"n": n, "campaign": campaign, "utm": parse_utm(utm), "heading": heading or None,
               "columns": columns, "record": not preview}
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    written = 0
    try:
        with click.progressbar(length=len(user_ids), label="Email blocks", file=sys.stderr) as bar:
            for done, lines in export_lines(app, user_ids, workers or min(os.cpu_count() or 1, 4), **options):
                out_file.write("".join(line + "\n" for line in lines))
                written += len(lines)
                bar.update(done)
    except (ConfigurationError, ValidationError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{written} email blocks written for campaign {campaign!r}", err=True)
