"""``cosep-deploy profile``: per-layer times of the dense and pruned engines side by side (``layers.json``)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import click

from cosep_deploy.cli.context import Context
from cosep_deploy.cli.options import json_option, optional_run_option, precision_option, threads_option

__all__ = ["command"]


@click.command("profile")
@optional_run_option("Profile the run's exported dense and pruned ONNX; writes RUN/bench/layers.json for the report.")
@click.option(
    "--onnx",
    "onnx_files",
    nargs=2,
    type=click.Path(dir_okay=False),
    default=None,
    metavar="DENSE PRUNED",
    help="Instead: profile these two ONNX files with ONNX Runtime.",
)
@click.option(
    "--trtexec-profiles",
    nargs=2,
    type=click.Path(dir_okay=False),
    default=None,
    metavar="DENSE PRUNED",
    help="Instead: compare two trtexec --exportProfile JSON files (e.g. a Jetson bundle's results).",
)
@click.option(
    "--trtexec-layer-info",
    nargs=2,
    type=click.Path(dir_okay=False),
    default=None,
    metavar="DENSE PRUNED",
    help="The engines' trtexec --exportLayerInfo files (detailed verbosity): layer types and conv groups.",
)
@precision_option(None, "With --run: which exported variant to profile [default: fp32].")
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True)
@click.option("--iterations", type=click.IntRange(1), default=50, show_default=True, help="Profiled runs per model.")
@click.option("--warmup", type=click.IntRange(0), default=5, show_default=True, help="Runs left out first.")
@threads_option
@click.option("--top", type=click.IntRange(1), default=15, show_default=True, help="Layers to show.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write layers.json with --onnx or --trtexec-profiles [default: ./layers.json].",
)
@json_option("Print layers.json instead of the tables.")
@click.pass_obj
def command(
    obj: Context,
    run_dir: str | None,
    onnx_files: tuple[str, str] | None,
    trtexec_profiles: tuple[str, str] | None,
    trtexec_layer_info: tuple[str, str] | None,
    precision: str | None,
    batch: int,
    iterations: int,
    warmup: int,
    threads: int | None,
    top: int,
    out: str | None,
    as_json: bool,
) -> None:
    """Where time goes: per-layer times of the dense and the pruned engine side by side.

    ONNX Runtime's profiler times every node of both models (same session settings as `bench`, runs
    alternating); trtexec profiles come from `trtexec --exportProfile`. Layers are paired by name, then by
    normalised name, then by kind in execution order; layers left unpaired are listed, not hidden.
    """
    from cosep_deploy.bench.layer_sources import compare_trtexec_profiles, profile_onnxruntime
    from cosep_deploy.pipeline.layout import RunLayout
    from cosep_deploy.pipeline.stages import layers_stage

    _check_sources(run_dir, onnx_files, trtexec_profiles, trtexec_layer_info, precision, out)
    progress = None if as_json else obj.progress()
    if run_dir is not None:
        report = layers_stage(
            run_dir,
            precision=precision or "fp32",
            batch=batch,
            iterations=iterations,
            warmup=warmup,
            threads=threads,
            force=True,
            progress=progress,
        )
        target = RunLayout(Path(run_dir)).layers_json
    else:
        if trtexec_profiles is not None:
            info = trtexec_layer_info or (None, None)
            report = compare_trtexec_profiles(*trtexec_profiles, dense_layer_info=info[0], pruned_layer_info=info[1])
        else:
            dense, pruned = onnx_files or ("", "")  # exactly one source was given: the ONNX pair
            report = profile_onnxruntime(
                dense, pruned, batch=batch, iterations=iterations, threads=threads, warmup=warmup, progress=progress
            )
        target = report.save(Path(out or "layers.json"))
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
        return
    print_layers(report.to_json(), top, obj)
    obj.echo(f"written to {target}")
    if run_dir is not None:
        obj.echo(f"`cosep-deploy report --run {shlex.quote(str(run_dir))}` adds it to report.md and report.html")


def _check_sources(
    run_dir: str | None,
    onnx_files: tuple[str, str] | None,
    trtexec_profiles: tuple[str, str] | None,
    trtexec_layer_info: tuple[str, str] | None,
    precision: str | None,
    out: str | None,
) -> None:
    """Exactly one source (a run, two ONNX files, two trtexec profiles), and the options that go with it."""
    from cosep_deploy.errors import ConfigError

    if sum(s is not None for s in (run_dir, onnx_files, trtexec_profiles)) != 1:
        raise ConfigError("give exactly one of --run DIR, --onnx DENSE PRUNED or --trtexec-profiles DENSE PRUNED")
    if trtexec_layer_info is not None and trtexec_profiles is None:
        raise ConfigError("--trtexec-layer-info goes with --trtexec-profiles")
    if run_dir is not None and out is not None:
        raise ConfigError("with --run, layers.json goes to RUN/bench/; --out is for --onnx and --trtexec-profiles")
    if precision is not None and run_dir is None:
        raise ConfigError("--precision picks a run's exported variant: use it with --run")


def print_layers(layers: dict[str, Any], top: int, obj: Context) -> None:
    """The top layers by dense time and the per-kind summary as rich tables, then the unpaired layers."""
    from rich.table import Table

    from cosep_deploy.bench.layer_tables import KIND_COLUMNS, LAYER_COLUMNS, kind_table, layer_table, layers_summary

    table = Table(title=f"Where time goes: top {top} layers by dense time")
    for col in LAYER_COLUMNS:
        table.add_column(col, justify="left" if col in ("layer", "kind", "paired by") else "right", overflow="fold")
    for row in layer_table(layers, top):
        table.add_row(*row)
    obj.print(table)
    kinds = Table(title="By kind of layer")
    for col in KIND_COLUMNS:
        kinds.add_column(col, justify="left" if col == "kind" else "right")
    for row in kind_table(layers):
        kinds.add_row(*row)
    obj.print(kinds)
    obj.echo(layers_summary(layers))
    for side in ("dense", "pruned"):
        names = layers["unmatched"][side]
        if names:
            more = f" (+{len(names) - 10} more)" if len(names) > 10 else ""
            obj.echo(f"only in {side}: {', '.join(names[:10])}{more}")
