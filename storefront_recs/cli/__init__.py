"""``flask recs ...`` commands."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import click
from flask.cli import AppGroup

from .. import db as dbmod
from ..assembly import current_state
from ..errors import ImportFileError
from ..importing import ImportReport
from ..plugins import IMPORTERS, plugin

recs_cli = AppGroup("recs", help="storefront-recs: database, imports, training.")
db_cli = AppGroup("db", help="Migrations of the recs tables (never touches the shop's tables).")
recs_cli.add_command(db_cli)

SHOWN_BAD_LINES = 20




@db_cli.command("upgrade")
@click.argument("revision", default="heads")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    from ..tracking.import_indexes import restore_indexes

    engine = current_state().engine
    dbmod.upgrade(engine, revision)
    if revision == "heads" and (rebuilt := restore_indexes(engine)):
        click.echo(f"rebuilt event indexes an interrupted import left out: {', '.join(rebuilt)}")
    click.echo(f"recs database at revision {dbmod.current_revision(engine)}")


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ('base' drops every recs table)."""
    engine = current_state().engine
    dbmod.downgrade(engine, revision)
    click.echo(f"recs database at revision {dbmod.current_revision(engine) or 'base'}")


@db_cli.command("current")
def db_current() -> None:
    """Show the applied revision and whether it is the latest."""
    engine = current_state().engine
    current, head = dbmod.current_revision(engine), dbmod.head_revision(engine)
    state = "up to date" if current == head else f"behind: latest is {head}"
    click.echo(f"{current or 'base (no recs tables)'} ({state})")


def _run_import(label: str, path: str, run: Any) -> ImportReport:
    size = os.path.getsize(path)
    with click.progressbar(length=size, label=label, file=sys.stderr) as bar:
        try:
            report: ImportReport = run(bar.update)
        except ImportFileError as exc:
            raise click.ClickException(str(exc)) from exc
    _report(report)
    return report


def _report(report: ImportReport) -> None:
    click.echo(report.summary())
    for line, reason in report.bad_lines[:SHOWN_BAD_LINES]:
        click.echo(f"  line {line}: {reason}", err=True)
    if report.bad_count > SHOWN_BAD_LINES:
        click.echo(f"  ... and {report.bad_count - SHOWN_BAD_LINES} more bad lines", err=True)


def _exit_for(report: ImportReport) -> None:
    if report.bad_count:
        sys.exit(1)  # good rows are stored; a non-zero exit tells scripts some were not


IMPORTER_HELP = "Read PATH (a file, URL or other location) through this importer plugin (flask recs plugins)."


def _importer_records(name: str, kind: str, location: str) -> Iterable[Mapping[str, Any]]:
    """The records an importer plugin reads from ``location``; a clear error for a wrong plugin."""
    try:
        importer_class = plugin(IMPORTERS, name)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from exc
    if importer_class.kind != kind:
        raise click.ClickException(f"the importer {name!r} reads {importer_class.kind}, not {kind}")
    records: Iterable[Mapping[str, Any]] = importer_class(current_state().config).read(location)
    return records


def _existing_file(path: str) -> str:
    if not os.path.isfile(path):
        raise click.BadParameter(f"no file {path!r} (give --importer NAME to read other locations)",
                                 param_hint="PATH")
    return path


@recs_cli.command("import-catalog")
@click.argument("path")
@click.option("--importer", "importer", default=None, metavar="NAME", help=IMPORTER_HELP)
def import_catalog_command(path: str, importer: str | None) -> None:
    """Upsert catalogue items from a CSV or JSONL file (extra columns become attributes).

    Exits 1 when some lines were rejected; the good lines are stored either way.
    """
    from ..catalog.importer import import_catalog, import_catalog_records

    state = current_state()
    if importer is not None:
        records = _importer_records(importer, "catalog", path)
        report = import_catalog_records(state.recs.catalog, ((n, dict(r), None) for n, r in enumerate(records, 1)))
        _report(report)
        _exit_for(report)
        return
    _existing_file(path)
    report = _run_import(
        "Importing catalogue",
        path,
        lambda progress: import_catalog(state.recs.catalog, path, on_progress=progress),
    )
    _exit_for(report)


@recs_cli.command("import-events")
@click.argument("path")
@click.option("--importer", "importer", default=None, metavar="NAME", help=IMPORTER_HELP)
@click.option("--indexes", type=click.Choice(["auto", "defer", "keep"]), default="auto", show_default=True,
              help="Build the events table's lookup indexes once at the end (defer) or row by row (keep); "
                   "auto defers them for a backfill: a file of 100k+ rows into a table with fewer events.")
def import_events_command(path: str, importer: str | None, indexes: str) -> None:
    """Import historical events from CSV or JSONL: user_id,item_id,type,timestamp[,quantity,value,event_id].

    Idempotent: importing the same file again stores nothing twice. Exits 1 when some lines
    were rejected; the good lines are stored either way. While deferred indexes are rebuilt,
    lookups of a visitor's or an item's events scan the table: defer them on a live shop only
    in a quiet hour.
    """
    from ..tracking.importer import import_event_records, import_events

    state = current_state()
    max_future = timedelta(seconds=state.config["RECS_MAX_FUTURE_SECONDS"])
    if importer is not None:
        events = import_event_records(state.checked_engine(), _importer_records(importer, "events", path),
                                      state.user_key, max_future, state.config["RECS_IMPORT_BATCH_SIZE"],
                                      state.suppressions, int(state.config["RECS_MAX_QUANTITY"]),
                                      float(state.config["RECS_MAX_VALUE"]))
        _report(events)
        _exit_for(events)
        return
    _existing_file(path)
    report = _run_import(
        "Importing events",
        path,
        lambda progress: import_events(
            state.checked_engine(),
            path,
            user_key=state.user_key,
            max_future=max_future,
            batch_size=state.config["RECS_IMPORT_BATCH_SIZE"],
            on_progress=progress,
            suppressions=state.suppressions,
            indexes=indexes,  # type: ignore[arg-type]
            max_quantity=int(state.config["RECS_MAX_QUANTITY"]),
            max_value=float(state.config["RECS_MAX_VALUE"]),
        ),
    )
    _exit_for(report)

from .training import evaluate_command, scheduler_command, train_command  # noqa: E402

recs_cli.add_command(train_command)
recs_cli.add_command(evaluate_command)
recs_cli.add_command(scheduler_command)

from .privacy import register_privacy_commands  # noqa: E402

register_privacy_commands(recs_cli)

from .experiments import report_command  # noqa: E402

recs_cli.add_command(report_command)

from .email import email_blocks_command  # noqa: E402

recs_cli.add_command(email_blocks_command)

from .plugins import plugins_command  # noqa: E402

recs_cli.add_command(plugins_command)
