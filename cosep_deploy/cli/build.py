"""``cosep-deploy build``: engines for a target device (or a deploy bundle for a Jetson board)."""

from __future__ import annotations

import click

from cosep_deploy.cli.context import Context
from cosep_deploy.cli.options import run_option, threads_option

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
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Engine cache for TensorRT builds (default: $COSEP_DEPLOY_CACHE or ~/.cache/cosep-deploy/engines).",
)
@click.option("--no-cache", is_flag=True, help="Build every TensorRT engine, neither reusing nor storing cached ones.")
@click.option(
    "--allow-other-device",
    is_flag=True,
    help="On a Jetson board: build even if the board is not the target's device (e.g. an Orin Nano for "
    "--target jetson-agx-orin).",
)
@click.pass_obj
def command(
    obj: Context,
    run_dir: str,
    target: str,
    precisions: str | None,
    threads: int | None,
    cache_dir: str | None,
    no_cache: bool,
    allow_other_device: bool,
) -> None:
    """Build engines from the run's ONNX files (writes RUN/engines/TARGET/).

    CPU targets get ONNX Runtime engines; GPU targets TensorRT engines (needs TensorRT and a GPU here),
    reused from the engine cache when the same ONNX, TensorRT, GPU and options were built before.
    Jetson targets, off the board, get a deploy bundle per model whose script builds and benchmarks the
    engines on the board itself (engines cannot be built for a Jetson on another machine); on the board,
    this command builds the engines, records the power mode and clocks, and benchmarks dense vs pruned.
    """
    from cosep_deploy.pipeline.build import build_stage

    if no_cache and cache_dir is not None:
        raise click.UsageError("--cache-dir and --no-cache contradict each other; pass one of them")
    wanted = tuple(p.strip() for p in precisions.split(",")) if precisions else None
    bad = [p for p in wanted or () if p not in ("fp32", "fp16", "int8")]
    if bad:
        raise click.BadParameter(f"{', '.join(bad)}: choose from fp32, fp16, int8", param_hint="--precisions")
    made = build_stage(
        run_dir,
        target=target,
        precisions=wanted,
        threads=threads,
        progress=obj.progress(),
        cache_dir=cache_dir,
        use_cache=not no_cache,
        allow_other_device=allow_other_device,
    )
    out = f"{run_dir}/engines/{made['target']}"
    cache_use = made.get("cache", {})
    for name in made.get("engines", {}):
        reused = " (from the engine cache)" if cache_use.get(name, {}).get("hit") else ""
        obj.echo(f"engine {name}: {out}/{reused}")
    for precision, report in made.get("bench", {}).items():
        obj.echo(f"{precision}: dense vs pruned on this board: {out}/{report}")
    for model, bundle in made.get("bundles", {}).items():
        obj.echo(f"{model}: deploy bundle {out}/{bundle}/ (copy it to the board and run build_and_bench.sh)")
