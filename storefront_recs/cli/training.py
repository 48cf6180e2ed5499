"""``flask recs train``, ``flask recs evaluate`` and ``flask recs scheduler``."""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

from ..assembly import current_state
from ..engine.report import TrainReport
from ..engine.train import STAGES

EVALUATE_STAGES = STAGES[: STAGES.index("evaluate") + 1]


def _recs() -> Any:
    return current_state().recs


def _with_progress(label: str, stages: tuple[str, ...], run: Any) -> TrainReport:
    with click.progressbar(length=len(stages), label=label, file=sys.stderr,
                           item_show_func=lambda s: s or "") as bar:
        seen: list[str] = []

        def progress(stage: str) -> None:
            if seen:
                bar.update(1, seen[-1])
            seen.append(stage)
            bar.current_item = stage
            bar.render_progress()

        report: TrainReport = run(progress)
        bar.update(len(stages) - bar.pos)
    return report


@click.command("train")
@click.option("--trigger", default="cli", show_default=True, help="Recorded in the run history.")
@with_appcontext
def train_command(trigger: str) -> None:
    """Train every model and publish a new bundle (unless the quality gate refuses it).

    Exits 1 when the run failed, 2 when the quality gate refused it, 3 when another run
    held the training lease.
    """
    report = _with_progress("Training", STAGES, lambda progress: _recs().train(trigger, progress=progress))
    click.echo(report.summary())
    if report.status == "rejected":
        click.echo(f"NOT PUBLISHED: {report.message}; the serving model stays.", err=True)
        sys.exit(2)
    if report.status == "failed":
        click.echo(f"FAILED: {report.message}; the serving model stays.", err=True)
        sys.exit(1)
    if report.status == "skipped":
        click.echo("SKIPPED: another training run holds the lease.", err=True)
        sys.exit(3)


@click.command("evaluate")
@with_appcontext
def evaluate_command() -> None:
    """Fit on a time split and print NDCG@10, Recall@10/20 and coverage vs popularity."""
    report = _with_progress("Evaluating", EVALUATE_STAGES, lambda progress: _recs().evaluate(progress=progress))
    click.echo(report.summary())


@click.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Run the training schedule (RECS_TRAIN_CRON or RECS_TRAIN_INTERVAL) in this process."""
    from ..scheduler import build_scheduler, make_trigger

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    trigger = make_trigger(app.config)
    if trigger is None:
        raise click.ClickException("training is not scheduled: set RECS_TRAIN_CRON or RECS_TRAIN_INTERVAL > 0")
    click.echo(f"storefront-recs scheduler: training on {trigger}; Ctrl-C to stop")
    scheduler = build_scheduler(app, blocking=True)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()
