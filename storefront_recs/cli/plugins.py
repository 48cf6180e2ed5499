"""``flask recs plugins``: what is installed, what this app enables, and what failed to load."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from ..assembly import current_state
from ..plugins import SOURCES, TRAINERS, plugin_status


@click.command("plugins")
@with_appcontext
def plugins_command() -> None:
    """List the installed plugins (sources, trainers, importers) and which are enabled."""
    config = current_state().config
    enabled = {SOURCES: set(config["RECS_SOURCES"] or ()), TRAINERS: {config["RECS_TRAINER"]}}
    rows = plugin_status()
    if not rows:
        click.echo("no plugins installed")
    for info in rows:
        group = info.group.rsplit(".", 1)[-1]
        where = f"{info.distribution} {info.version}" if info.distribution else info.value
        if info.error:
            state = f"FAILED: {info.error}"
        elif info.group in enabled:
            state = "enabled" if info.name in enabled[info.group] else "installed"
        else:
            state = "available"
        click.echo(f"{group:<10} {info.name:<16} {where:<40} {state}")
    missing = [f"{name} ({group.rsplit('.', 1)[-1]})" for group, names in enabled.items()
               for name in names if name not in {i.name for i in rows if i.group == group and i.ok}]
    if missing:
        raise click.ClickException(f"enabled but not loadable: {', '.join(sorted(missing))}")
