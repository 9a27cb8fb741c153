"""``cosep-deploy targets``: list device target profiles."""

from __future__ import annotations

import json

import click

from cosep_deploy.cli.options import json_option

__all__ = ["command"]


@click.command("targets")
@json_option("Print JSON.")
def command(as_json: bool) -> None:
    """List the device target profiles: shipped ones, those in $COSEP_DEPLOY_TARGETS folders and --target-file
    (precision, channel alignment, DLA, TensorRT range)."""
    import dataclasses

    from rich.console import Console
    from rich.table import Table

    from cosep_deploy.targets import list_targets

    targets = list_targets()
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(t) for t in targets], indent=2, default=str))
        return
    table = Table(title="target profiles")
    for col in ("name", "backend", "precisions", "round_to", "DLA", "TensorRT", "description"):
        table.add_column(col, no_wrap=col == "name")  # names are what users type: never cut
    for t in targets:
        d = dataclasses.asdict(t)
        table.add_row(
            t.name,
            str(d.get("backend")),
            ",".join(d.get("precisions", [])),
            str(d.get("round_to")),
            str(d.get("dla")),
            str(d.get("tensorrt")),
            str(d.get("description")),
        )
    console = Console()
    if not console.is_terminal:  # piped: rich would assume 80 columns and cut the names
        console = Console(width=200)
    console.print(table)
