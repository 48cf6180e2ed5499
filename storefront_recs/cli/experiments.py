"""``flask recs report``: the dashboard's experiment results in the terminal."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from ..assembly import current_state
from ..experiments.results import ExperimentResult


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def _lift(result: ExperimentResult, name: str, metric: str) -> str:
    comparison = result.variant(name).vs_baseline.get(metric)
    if comparison is None:
        return "baseline" if result.variant(name).baseline else "-"
    lift = "n/a" if comparison.lift is None else f"{100 * comparison.lift:+.1f}%"
    mark = "*" if comparison.significant(result.confidence) else ""
    return f"{lift} (p={comparison.p_value:.3f}){mark}"


def format_result(result: ExperimentResult) -> str:
    """A plain-text table of one experiment's results."""
    experiment = result.experiment
    lines = [
        f"Experiment {experiment.key} ({experiment.name}) - {experiment.status}",
        f"  {result.since:%Y-%m-%d %H:%M} .. {result.until:%Y-%m-%d %H:%M} UTC, "
        f"{int(result.confidence * 100)}% intervals, * = significant against the baseline",
        "",
    ]
    header = ("variant", "visitors", "impr.", "clicks", "CTR [interval]", "conversion [interval]",
              "revenue/visitor [interval]", "credited orders/revenue", "conv. lift", "rev./visitor lift")
    rows = [header]
    for v in result.variants:
        label = v.name + (f" (holdout: {v.holdout})" if v.holdout else "") + (" [baseline]" if v.baseline else "")
        rows.append((
            label, str(v.visitors), str(v.impressions), str(v.clicks),
            f"{_pct(v.ctr.value)} [{_pct(v.ctr.low)}, {_pct(v.ctr.high)}]",
            f"{_pct(v.conversion.value)} [{_pct(v.conversion.low)}, {_pct(v.conversion.high)}]",
            f"{v.revenue_per_visitor.value:.2f} [{v.revenue_per_visitor.low:.2f}, {v.revenue_per_visitor.high:.2f}]",
            f"{v.credited_orders} / {v.credited_revenue:.2f}",
            _lift(result, v.name, "conversion"),
            _lift(result, v.name, "revenue_per_visitor"),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        lines.append("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    lines += [f"  warning: {w}" for w in result.warnings]
    return "\n".join(lines)


@click.command("report")
@with_appcontext
@click.argument("key", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def report_command(key: str | None, as_json: bool) -> None:
    """Experiment results (all experiments, or KEY): CTR, conversion, revenue, lift, intervals."""
    recs = current_state().recs
    keys = [key] if key else [e.key for e in recs.experiments()]
    if key and key not in {e.key for e in recs.experiments()}:
        raise click.ClickException(f"no experiment {key!r}")
    results = [recs.experiment_results(k) for k in keys]
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
    elif not results:
        click.echo("No experiments: declare them in RECS_EXPERIMENTS or create one in /recs/admin/.")
    else:
        click.echo("\n\n".join(format_result(r) for r in results))
