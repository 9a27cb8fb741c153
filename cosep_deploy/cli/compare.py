"""``cosep-deploy compare``: outputs of two engines on real validation images (Polygraphy comparator)."""

from __future__ import annotations

import click

from cosep_deploy.cli.context import Context
from cosep_deploy.cli.options import run_option

__all__ = ["command"]


@click.command("compare")
@run_option
@click.option(
    "--reference",
    required=True,
    type=click.Path(exists=True),
    help="Reference engine, usually the fp32 ONNX (e.g. RUN/onnx/pruned.onnx), or a run's model folder "
    "(RUN/pruned) run in PyTorch.",
)
@click.option(
    "--candidate",
    required=True,
    type=click.Path(exists=True),
    help="Engine to check (.onnx variant, a TensorRT .engine/.plan on a GPU machine, or a run's model folder).",
)
@click.option(
    "--candidate-backend",
    type=click.Choice(["torch", "torch-tensorrt"]),
    default=None,
    help="How a candidate model folder is run: eager PyTorch on the CPU (default) or Torch-TensorRT (GPU).",
)
@click.option(
    "--samples",
    type=click.IntRange(1),
    default=256,
    show_default=True,
    help="Validation images of the run's data to compare on.",
)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "fp16", "int8"]),
    default=None,
    help="Tolerances to apply (default: the candidate's precision).",
)
@click.option("--rtol", type=float, default=None)
@click.option("--atol", type=float, default=None)
@click.pass_obj
def command(
    obj: Context,
    run_dir: str,
    reference: str,
    candidate: str,
    candidate_backend: str | None,
    samples: int,
    precision: str | None,
    rtol: float | None,
    atol: float | None,
) -> None:
    """Compare two engines' outputs; exits 1 (one line per failing output) when they differ."""
    import numpy as np
    import torch

    from cosep_deploy.compare import compare_files
    from cosep_deploy.pipeline.stages import data_for_run, load_run_spec

    bundle = data_for_run(load_run_spec(run_dir))
    n = min(samples, len(bundle.val))
    images = torch.stack([bundle.val[i][0] for i in range(n)]).numpy().astype(np.float32)
    result = compare_files(
        reference,
        candidate,
        images,
        precision=precision,
        rtol=rtol,
        atol=atol,
        check=True,
        candidate_backend=candidate_backend,
    )
    for line in result.lines():
        obj.echo(line)
    obj.echo(f"{candidate} matches {reference} on {n} validation images ({result.precision} tolerances)")
