"""``cosep-deploy collect``: bring a board's results back into the run directory."""

from __future__ import annotations

import json

import click

from cosep_deploy.cli.context import Context
from cosep_deploy.cli.options import json_option, run_option

__all__ = ["command"]


@click.command("collect")
@run_option
@json_option("Print what was collected as JSON.")
@click.argument("bundle_dir", type=click.Path(file_okay=False))
@click.pass_obj
def command(obj: Context, run_dir: str, as_json: bool, bundle_dir: str) -> None:
    """Check BUNDLE_DIR's results (run on the board by ./build_and_bench.sh) against the bundle and this run's
    ONNX files, and copy them to RUN/board/<target>/; `cosep-deploy report` then shows them."""
    from cosep_deploy.board.collect import collect_board_results

    summary = collect_board_results(run_dir, bundle_dir)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        obj.echo(
            f"collected {len(summary['engines'])} engine manifests and {summary['pairs']} dense/pruned timings "
            f"from {summary['target']} (TensorRT {summary['tensorrt_version']}) into "
            f"{run_dir}/board/{summary['target']}"
        )
        if summary["failed"]:
            obj.echo(f"engines that failed on the board: {', '.join(summary['failed'])}")
