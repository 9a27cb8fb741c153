"""``cosep-deploy report``: the run's summary table and report.md."""

from __future__ import annotations

import json
from typing import Any

import click

from cosep_deploy.cli.context import Context
from cosep_deploy.cli.options import json_option, run_option

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
@json_option("Print the summary as JSON.")
@click.pass_obj
def command(obj: Context, run_dir: str, as_json: bool) -> None:
    """Summarise a run and write RUN/report.md and the self-contained RUN/report.html (with plots)."""
    from cosep_deploy.bench.html_report import write_html_report
    from cosep_deploy.bench.report import write_report
    from cosep_deploy.errors import RunDirError, StorageError
    from cosep_deploy.pipeline.deploy import summary_rows
    from cosep_deploy.rundir import is_run_dir, run_session

    if not is_run_dir(run_dir):
        raise RunDirError(f"{run_dir} is not a cosep-deploy run directory: check --run")
    summary = summary_rows(run_dir)
    written: list[str] = []
    try:
        with run_session(run_dir):
            written = [str(write_report(run_dir, summary)), str(write_html_report(run_dir, summary))]
    except StorageError as exc:  # a read-only run directory: the summary still prints, on stdout
        click.echo(f"note: report files not written ({exc})", err=True)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        print_summary(summary)
        if written:
            obj.echo(f"report: {', '.join(written)}")
