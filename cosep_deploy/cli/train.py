"""``cosep-deploy train``: train (or load) the dense baseline of a run."""

from __future__ import annotations

import click

from cosep_deploy.cli.context import Context
from cosep_deploy.cli.options import run_option, train_config_from, train_options
from cosep_deploy.finetune.config import DENSE_TRAINING

__all__ = ["command"]


@click.command("train")
@run_option
@click.option(
    "--model",
    default="resnet20",
    show_default=True,
    help="Model name (resnet20, resnet56, vgg16_cifar, vgg19_cifar, mobilenetv2_cifar, densenet40, any torchvision "
    "classification model, or package.module:factory).",
)
@click.option(
    "--data",
    default="digits",
    show_default=True,
    help="Data spec: digits, cifar10:PATH, cifar100:PATH, imagefolder:PATH, synthetic:C.",
)
@click.option("--image-size", type=click.IntRange(8), default=None, help="Resize images (digits: upscale 8x8).")
@click.option(
    "--weights",
    type=click.Path(dir_okay=False),
    default=None,
    help="Load dense weights (safetensors or state dict) instead of training.",
)
@train_options(DENSE_TRAINING)
@click.pass_obj
def command(
    obj: Context,
    run_dir: str,
    model: str,
    data: str,
    image_size: int | None,
    weights: str | None,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
) -> None:
    """Train a dense baseline with a fixed seed (writes RUN/dense/)."""
    from cosep_deploy.pipeline.stages import RunSpec, train_stage

    spec = RunSpec(model=model, data=data, image_size=image_size, seed=seed)
    result = train_stage(
        run_dir, spec, train_config_from(epochs, lr, batch_size, seed), weights=weights, progress=obj.progress()
    )
    obj.echo(
        f"dense {model}: validation top-1 {100 * result.val_top1:.2f}% ({result.seconds:.0f} s) -> {run_dir}/dense"
    )
