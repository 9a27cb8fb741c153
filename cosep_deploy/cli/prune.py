"""``cosep-deploy prune``: CoSeP channel selection and structural surgery."""

from __future__ import annotations

import click

from .main import Context
from .options import run_option

__all__ = ["command"]


@click.command("prune")
@run_option
@click.option(
    "--hook-point",
    type=click.Choice(["bn", "conv", "act"]),
    default="bn",
    show_default=True,
    help="Which tensor's statistics describe a channel.",
)
@click.option("--spatial", default="gap", show_default=True, help="gap | pool:S | pixel (paper).")
@click.option("--images-per-class", type=click.IntRange(2), default=32, show_default=True)
@click.option("--pair-budget", type=click.IntRange(1), default=None, help="Sample class pairs above this many.")
@click.option("--k-grid", type=click.Choice(["auto", "all"]), default="auto", show_default=True)
@click.option("--keep", type=click.Choice(["max_l1", "medoid"]), default="max_l1", show_default=True)
@click.option(
    "--round-to",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Round kept channels up to a multiple (8 for FP16 engines, 32 for INT8).",
)
@click.option("--ignore", "ignored", multiple=True, help="Layer (qualified name) to leave alone; repeatable.")
@click.option("--prune-stem", is_flag=True, help="Also prune the first convolution's group.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.pass_obj
def command(
    obj: Context,
    run_dir: str,
    hook_point: str,
    spatial: str,
    images_per_class: int,
    pair_budget: int | None,
    k_grid: str,
    keep: str,
    round_to: int,
    ignored: tuple[str, ...],
    prune_stem: bool,
    seed: int,
) -> None:
    """Select channels by class separability and remove them (writes RUN/pruned/)."""
    from ..pipeline.stages import prune_stage
    from ..prune.api import PruneConfig

    cfg = PruneConfig(
        hook_point=hook_point,
        spatial=spatial,
        images_per_class=images_per_class,
        pair_budget=pair_budget,
        k_grid=k_grid,
        keep=keep,
        round_to=round_to,
        ignored_layers=tuple(ignored),
        prune_stem=prune_stem,
        seed=seed,
    )
    plan, acc = prune_stage(run_dir, cfg, progress=obj.progress())
    obj.echo(
        f"pruned {len(plan.groups)} groups: MACs {plan.cost_before['macs'] / 1e6:.2f}M -> "
        f"{plan.cost_after['macs'] / 1e6:.2f}M ({plan.macs_ratio:.2f}x); top-1 before fine-tuning "
        f"{100 * acc:.2f}% -> {run_dir}/pruned"
    )
