"""``cosep-deploy prune``: CoSeP channel selection (or a baseline) and structural surgery."""

from __future__ import annotations

from typing import Any

import click

from cosep_deploy.cli.context import Context
from cosep_deploy.cli.latency_options import latency_options, latency_request_from
from cosep_deploy.cli.options import PRUNE, precision_option, prune_options, run_option

__all__ = ["command"]


@click.command("prune")
@run_option
@prune_options
@click.option(
    "--hook-point",
    type=click.Choice(["bn", "conv", "act", "add"]),
    default=PRUNE["hook_point"],
    show_default=True,
    help="Which tensor's statistics describe a channel (add: residual groups after the add).",
)
@click.option(
    "--knee-rule",
    type=click.Choice(["robust", "paper"]),
    default=PRUNE["knee_rule"],
    show_default=True,
    help="robust: follows the MSS curve; paper: Kneedle after a degree-2 fit (the paper's literal rule).",
)
@click.option("--min-keep", type=click.FloatRange(0, 1, min_open=True), default=PRUNE["min_keep"], show_default=True)
@click.option(
    "--max-keep",
    type=click.FloatRange(0, 1, min_open=True),
    default=PRUNE["max_keep"],
    show_default=True,
    help="Keep-ratio bounds of the robust knee (recorded when they bind).",
)
@click.option(
    "--between-fraction",
    type=click.FloatRange(0, 1, min_open=True),
    default=PRUNE["between_fraction"],
    show_default=True,
)
@click.option(
    "--between-lr",
    type=click.FloatRange(0, min_open=True),
    default=PRUNE["between_lr"],
    show_default=True,
    help="Between-layer fine-tune learning rate (halved after the first epoch, as in the paper).",
)
@click.option("--spatial", default=PRUNE["spatial"], show_default=True, help="gap | pool:S | pixel (paper).")
@click.option(
    "--pair-budget", type=click.IntRange(1), default=PRUNE["pair_budget"], help="Sample class pairs above this many."
)
@click.option("--k-grid", type=click.Choice(["auto", "all"]), default=PRUNE["k_grid"], show_default=True)
@click.option("--keep", type=click.Choice(["max_l1", "medoid"]), default=PRUNE["keep"], show_default=True)
@click.option(
    "--ratio",
    type=click.FloatRange(0, 1, min_open=True),
    default=PRUNE["ratio"],
    help="Keep fraction per group (l1, random, uniform).",
)
@click.option(
    "--counts-from",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="A plan.json whose per-group kept counts a baseline should match (e.g. CoSeP's).",
)
@click.option("--emp-beta", type=click.FloatRange(0, min_open=True), default=PRUNE["emp_beta"], show_default=True)
@click.option(
    "--round-to",
    type=click.IntRange(1),
    default=None,
    help="Align kept channels to the nearest multiple, within a quarter of k (default: the --target's, else 1).",
)
@click.option("--target", default=None, help="Target profile whose channel alignment to use (see `targets`).")
@precision_option(None, "Engine precision the alignment is for (default: the target's).")
@latency_options
@click.option("--ignore", "ignored", multiple=True, help="Layer (qualified name) to leave alone; repeatable.")
@click.option("--prune-stem", is_flag=True, help="Also prune the first convolution's group.")
@click.option("--seed", type=int, default=PRUNE["seed"], show_default=True)
@click.pass_obj
def command(
    obj: Context,
    run_dir: str,
    counts_from: str | None,
    round_to: int | None,
    target: str | None,
    precision: str | None,
    ignored: tuple[str, ...],
    target_speedup: float | None,
    latency_budget_ms: float | None,
    latency_batch: int | None,
    latency_table: str | None,
    latency_rounds: int | None,
    rebuild_table: bool,
    **options: Any,
) -> None:
    """Select channels and remove them physically (writes RUN/pruned/)."""
    from cosep_deploy.artifacts import read_json
    from cosep_deploy.pipeline.stages import prune_stage
    from cosep_deploy.prune.api import PruneConfig

    if options.get("ratio") is not None and options.get("method") in ("cosep", "emp"):
        raise click.UsageError(
            f"--ratio does not apply to --method {options['method']} (it chooses each group's count itself); "
            "use --target-macs-ratio for a global budget"
        )
    if target is None and (target_speedup is not None or latency_budget_ms is not None):
        target = "cpu-onnxruntime"  # a speed-up is measured on a target: the embedded default
    if round_to is None:
        from cosep_deploy.targets import get_target

        round_to = get_target(target).round_to_for(precision) if target else 1
    counts = None
    if counts_from:
        plan_json = read_json(counts_from, what="plan to match")
        counts = {g["root"]: int(g["n_kept"]) for g in plan_json.get("groups", [])}
    request = latency_request_from(
        target,
        precision,
        target_speedup,
        latency_budget_ms,
        latency_batch,
        latency_table,
        latency_rounds,
        rebuild_table,
        macs_ratio=options.get("target_macs_ratio"),
    )
    if request is not None and options["method"] == "l1" and options["ratio"] is None and counts is None:
        options["ratio"] = 1.0  # the allocation sets the counts; L1 only orders the channels
    cfg = PruneConfig(round_to=round_to, counts=counts, ignored_layers=tuple(ignored), **options)
    if request is not None:
        from cosep_deploy.cli.latency_options import echo_latency_result
        from cosep_deploy.latency.stage import latency_prune_stage

        plan, acc = latency_prune_stage(run_dir, cfg, request, progress=obj.progress())
        echo_latency_result(obj, plan, acc, run_dir)
        return
    plan, acc = prune_stage(run_dir, cfg, progress=obj.progress())
    obj.echo(
        f"{plan.method}: pruned {len(plan.groups)} groups, MACs {plan.cost_before['macs'] / 1e6:.2f}M -> "
        f"{plan.cost_after['macs'] / 1e6:.2f}M ({plan.macs_ratio:.2f}x); top-1 before fine-tuning "
        f"{100 * acc:.2f}% -> {run_dir}/pruned"
    )
