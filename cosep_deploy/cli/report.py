"""``cosep-deploy report``: the run's summary table and report.md."""

from __future__ import annotations

import json
from typing import Any

import click

from cosep_deploy.cli.context import Context
from cosep_deploy.cli.options import run_option

__all__ = ["command", "print_summary"]


def print_summary(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from cosep_deploy.bench.report import summary_lines

    table = Table(title=f"cosep-deploy summary: {summary['run']}")
    for col in ("metric", "dense", "pruned", "ratio"):
        table.add_column(col)
    for row in summary_lines(summary):
        table.add_row(*row)
    Console().print(table)


@click.command("report")
@run_option
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_obj
def command(obj: Context, run_dir: str, as_json: bool) -> None:
    """Summarise a run and write RUN/report.md and the self-contained RUN/report.html (with plots)."""
    from cosep_deploy.bench.html_report import write_html_report
    from cosep_deploy.bench.report import write_report
    from cosep_deploy.pipeline.deploy import summary_rows

    summary = summary_rows(run_dir)
    path = write_report(run_dir, summary)
    html_path = write_html_report(run_dir, summary)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        print_summary(summary)
        obj.echo(f"report: {path}, {html_path}")
