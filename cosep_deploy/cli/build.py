"""``cosep-deploy build``: engines for a target device (or a deploy bundle for a Jetson board)."""

from __future__ import annotations

import click

from .main import Context
from .options import run_option, threads_option

__all__ = ["command"]


@click.command("build")
@run_option
@click.option(
    "--target",
    default="cpu-onnxruntime",
    show_default=True,
    help="Target profile name or TOML file (see `cosep-deploy targets`).",
)
@click.option(
    "--precisions",
    default=None,
    help="Comma-separated subset of fp32,fp16,int8 (default: all exported precisions the target supports).",
)
@threads_option
@click.pass_obj
def command(obj: Context, run_dir: str, target: str, precisions: str | None, threads: int | None) -> None:
    """Build engines from the run's ONNX files (writes RUN/engines/TARGET/).

    CPU targets get ONNX Runtime engines; GPU targets TensorRT engines (needs TensorRT and a GPU here);
    Jetson targets, off the board, get a deploy bundle per model whose script builds and benchmarks the
    engines on the board itself (engines cannot be built for a Jetson on another machine).
    """
    from ..pipeline.build import build_stage

    wanted = tuple(p.strip() for p in precisions.split(",")) if precisions else None
    made = build_stage(run_dir, target=target, precisions=wanted, threads=threads, progress=obj.progress())
    out = f"{run_dir}/engines/{made['target']}"
    for name in made.get("engines", {}):
        obj.echo(f"engine {name}: {out}/")
    for model, bundle in made.get("bundles", {}).items():
        obj.echo(f"{model}: deploy bundle {out}/{bundle}/ (copy it to the board and run build_and_bench.sh)")
