"""``cosep-deploy finetune``: recover accuracy after pruning."""

from __future__ import annotations

import click

from cosep_deploy.cli.context import Context
from cosep_deploy.cli.options import run_option, train_config_from, train_options
from cosep_deploy.finetune.config import FINETUNING

__all__ = ["command"]


@click.command("finetune")
@run_option
@train_options(FINETUNING)
@click.option(
    "--distill",
    type=click.FloatRange(0, 1),
    default=FINETUNING.distill_alpha,
    show_default=True,
    help="Weight of knowledge distillation from the dense model (0 = off).",
)
@click.pass_obj
def command(obj: Context, run_dir: str, epochs: int, lr: float, batch_size: int, seed: int, distill: float) -> None:
    """Fine-tune the pruned model (writes RUN/finetuned/)."""
    from cosep_deploy.pipeline.stages import finetune_stage

    result = finetune_stage(
        run_dir, train_config_from(epochs, lr, batch_size, seed, distill_alpha=distill), progress=obj.progress()
    )
    obj.echo(f"fine-tuned: validation top-1 {100 * result.val_top1:.2f}% -> {run_dir}/finetuned")
