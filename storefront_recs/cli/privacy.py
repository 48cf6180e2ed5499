"""``flask recs forget-user | export-user | unsuppress-user | purge-events``."""

from __future__ import annotations

import json
from typing import Any

import click
from flask.cli import AppGroup, with_appcontext

from ..assembly import current_state


def _recs() -> Any:
    return current_state().recs


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True))


@click.command("forget-user")
@with_appcontext
@click.argument("user_id")
@click.option(
    "--suppress/--no-suppress",
    default=None,
    help="Also stop storing their future events (default: RECS_SUPPRESS_ERASED_USERS).",
)
def forget_user_command(user_id: str, suppress: bool | None) -> None:
    """Erase everything stored about USER_ID at once and print the receipt as JSON."""
    _echo_json(_recs().forget_user(user_id, suppress=suppress))


@click.command("export-user")
@with_appcontext
@click.argument("user_id")
@click.option("--output", "-o", type=click.File("w"), default="-", help="File to write (default: stdout).")
def export_user_command(user_id: str, output: Any) -> None:
    """Print everything stored about USER_ID as JSON."""
    output.write(json.dumps(_recs().export_user(user_id), indent=2, sort_keys=True) + "\n")


@click.command("unsuppress-user")
@with_appcontext
@click.argument("user_id")
def unsuppress_user_command(user_id: str) -> None:
    """Let a forgotten USER_ID be tracked again (remove them from the suppression list)."""
    removed = _recs().unsuppress_user(user_id)
    click.echo(f"removed {removed} suppression entries")


@click.command("purge-events")
@with_appcontext
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
def purge_events_command(dry_run: bool) -> None:
    """Delete events older than RECS_RETENTION_DAYS (and per-type overrides); print counts as JSON."""
    _echo_json(_recs().purge_expired_events(dry_run=dry_run).to_dict())


def register_privacy_commands(group: AppGroup) -> None:
    for command in (forget_user_command, export_user_command, unsuppress_user_command, purge_events_command):
        group.add_command(command)
