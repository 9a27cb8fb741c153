"""``cosep-deploy build``: engines for a target device."""

from __future__ import annotations

import click

from .main import Context
from .options import run_option, threads_option

__all__ = ["command"]


@click.command("build")
@run_option
@click.option(
    "--target", default="cpu-onnxruntime", show_default=True, help="Target profile name (see `cosep-deploy targets`)."
)
@threads_option
@click.pass_obj
def command(obj: Context, run_dir: str, target: str, threads: int | None) -> None:
    """Build engines from the run's ONNX files (writes RUN/engines/TARGET/)."""
    from ..pipeline.deploy import build_stage

    manifests = build_stage(run_dir, target=target, threads=threads, progress=obj.progress())
    for name in manifests:
        obj.echo(f"{name}: {run_dir}/engines/{target}/{name}.onnx")
