"""``cosep-deploy pipeline``: the main job, every stage in one run directory."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import click

from cosep_deploy.cli.context import Context
from cosep_deploy.cli.latency_options import latency_options, latency_request_from
from cosep_deploy.cli.options import (
    SEED,
    bench_config_from,
    bench_options,
    json_option,
    precision_option,
    prune_options,
    threads_option,
)
from cosep_deploy.finetune.config import DENSE_TRAINING, FINETUNING

__all__ = ["command", "pipeline_config_from"]


@click.command("pipeline")
@click.option(
    "--out", "out_dir", default="runs/demo", show_default=True, type=click.Path(file_okay=False), help="Run directory."
)
@click.option("--model", default="resnet20", show_default=True, help="Model name (see `train --help`).")
@click.option("--data", default="digits", show_default=True, help="Data spec (see `train --help`).")
@click.option("--image-size", type=click.IntRange(8), default=None, help="Resize images.")
@click.option("--weights", type=click.Path(dir_okay=False), default=None, help="Dense weights; skips training.")
@click.option(
    "--epochs", type=click.IntRange(0), default=DENSE_TRAINING.epochs, show_default=True, help="Dense training epochs."
)
@click.option("--finetune-epochs", type=click.IntRange(0), default=FINETUNING.epochs, show_default=True)
@click.option(
    "--distill",
    type=click.FloatRange(0, 1),
    default=FINETUNING.distill_alpha,
    show_default=True,
    help="Knowledge-distillation weight from the dense model during fine-tuning (0 = off).",
)
@click.option(
    "--target",
    default="cpu-onnxruntime",
    show_default=True,
    help="Target profile: engines are built (or bundled) and benchmarked for it.",
)
@click.option(
    "--round-to",
    type=click.IntRange(1),
    default=None,
    help="Channel alignment (default: the target profile's, 16 for cpu-onnxruntime).",
)
@precision_option("fp32", "Precision the bench stage times (the target must run it; see `targets`).")
@prune_options
@latency_options
@bench_options
@threads_option
@click.option("--seed", type=int, default=SEED, show_default=True)
@click.option("--force", is_flag=True, help="Re-run every stage, even those whose inputs did not change.")
@json_option("Print the summary as JSON instead of a table.")
@click.pass_obj
def command(obj: Context, out_dir: str, force: bool, as_json: bool, **options: Any) -> None:
    """Train -> prune -> fine-tune -> export -> build -> bench -> report, then print the summary.

    Re-running into the same --out skips every stage whose inputs did not change (an interrupted run
    continues where it stopped).
    """
    from cosep_deploy.cli.report import print_summary
    from cosep_deploy.pipeline import run_pipeline

    cfg = pipeline_config_from(force=force, **options)
    summary = run_pipeline(out_dir, cfg, progress=None if as_json else obj.progress())
    if not summary:  # a non-zero rank under torchrun: rank 0 reports
        return
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    elif not obj.quiet:
        print_summary(summary)
        click.echo(f"report: {out_dir}/report.md and {out_dir}/report.html")


_LATENCY_KEYS = (
    "target_speedup",
    "latency_budget_ms",
    "latency_batch",
    "latency_table",
    "latency_rounds",
    "rebuild_table",
)
_BENCH_KEYS = ("batch_sizes", "iterations", "min_seconds", "warmup", "mode", "streams")


def pipeline_config_from(
    *,
    model: str,
    data: str,
    image_size: int | None,
    weights: str | None,
    epochs: int,
    finetune_epochs: int,
    distill: float,
    target: str,
    round_to: int | None,
    precision: str,
    threads: int | None,
    seed: int,
    force: bool,
    **rest: Any,
) -> Any:
    """The :class:`PipelineConfig` of the command's options: the run, each stage's config (one --seed for all),
    and a latency request; the options left in ``rest`` are the selection options of `prune_options`."""
    from cosep_deploy.pipeline import PipelineConfig, RunSpec
    from cosep_deploy.prune.config import PruneConfig
    from cosep_deploy.targets import get_target

    latency = latency_request_from(target, None, *(rest.pop(k) for k in _LATENCY_KEYS), threads=threads)
    bench = bench_config_from(**{k: rest.pop(k) for k in _BENCH_KEYS}, seed=seed)
    round_to = round_to or get_target(target).round_to_for(precision)
    return PipelineConfig(
        run=RunSpec(model=model, data=data, image_size=image_size, seed=seed),
        weights=weights,
        train=dataclasses.replace(DENSE_TRAINING, epochs=epochs, seed=seed),
        prune=PruneConfig(round_to=round_to, seed=seed, **rest),
        finetune=dataclasses.replace(FINETUNING, epochs=finetune_epochs, seed=seed, distill_alpha=distill),
        bench=bench,
        threads=threads,
        target=target,
        bench_precision=precision,
        force=force,
        latency=latency,
    )
