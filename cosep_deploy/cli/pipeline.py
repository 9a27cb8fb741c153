"""``cosep-deploy pipeline``: the main job, every stage in one run directory."""

from __future__ import annotations

import dataclasses
import json

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

__all__ = ["command"]


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
def command(
    obj: Context,
    out_dir: str,
    model: str,
    data: str,
    image_size: int | None,
    weights: str | None,
    epochs: int,
    finetune_epochs: int,
    distill: float,
    target: str,
    round_to: int | None,
    images_per_class: int,
    method: str,
    target_macs_ratio: float | None,
    precision: str,
    schedule: str,
    between_epochs: int | None,
    bn_recalibrate: int,
    target_speedup: float | None,
    latency_budget_ms: float | None,
    latency_batch: int | None,
    latency_table: str | None,
    latency_rounds: int | None,
    rebuild_table: bool,
    batch_sizes: str,
    iterations: int,
    min_seconds: float,
    warmup: int,
    mode: str,
    streams: int,
    threads: int | None,
    seed: int,
    force: bool,
    as_json: bool,
) -> None:
    """Train -> prune -> fine-tune -> export -> build -> bench -> report, then print the summary.

    Re-running into the same --out skips every stage whose inputs did not change (an interrupted run
    continues where it stopped).
    """
    from cosep_deploy.cli.report import print_summary
    from cosep_deploy.pipeline import PipelineConfig, RunSpec, run_pipeline
    from cosep_deploy.prune.api import PruneConfig
    from cosep_deploy.targets import get_target

    latency = latency_request_from(
        target,
        None,
        target_speedup,
        latency_budget_ms,
        latency_batch,
        latency_table,
        latency_rounds,
        rebuild_table,
        threads=threads,
    )
    cfg = PipelineConfig(
        run=RunSpec(model=model, data=data, image_size=image_size, seed=seed),
        weights=weights,
        train=dataclasses.replace(DENSE_TRAINING, epochs=epochs, seed=seed),
        prune=PruneConfig(
            method=method,
            target_macs_ratio=target_macs_ratio,
            round_to=round_to or get_target(target).round_to_for(precision),
            images_per_class=images_per_class,
            seed=seed,
            schedule=schedule,
            between_epochs=between_epochs,
            bn_recalibrate=bn_recalibrate,
        ),
        finetune=dataclasses.replace(FINETUNING, epochs=finetune_epochs, seed=seed, distill_alpha=distill),
        bench=bench_config_from(batch_sizes, iterations, min_seconds, warmup, mode, streams, seed),
        threads=threads,
        target=target,
        bench_precision=precision,
        force=force,
        latency=latency,
    )
    summary = run_pipeline(out_dir, cfg, progress=None if as_json else obj.progress())
    if not summary:  # a non-zero rank under torchrun: rank 0 reports
        return
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    elif not obj.quiet:
        print_summary(summary)
        click.echo(f"report: {out_dir}/report.md and {out_dir}/report.html")
