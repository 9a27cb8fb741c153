"""``cosep-deploy compare``: outputs of two engines on real validation images (Polygraphy comparator)."""

from __future__ import annotations

from pathlib import Path

import click

from cosep_deploy.cli.context import Context
from cosep_deploy.cli.options import optional_run_option, precision_option

__all__ = ["command"]


@click.command("compare")
@optional_run_option(
    "Run directory whose validation images to compare on; without it, seeded random inputs of the "
    "reference's input shape (as Polygraphy does)."
)
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
@precision_option(None, "Tolerances to apply (default: the candidate's precision).")
@click.option("--rtol", type=float, default=None)
@click.option("--atol", type=float, default=None)
@click.pass_obj
def command(
    obj: Context,
    run_dir: str | None,
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
    from cosep_deploy.engines.manifest import manifest_path_for
    from cosep_deploy.pipeline.stages import data_for_run, load_run_spec

    bare_engine = Path(candidate).suffix in (".engine", ".plan") and not manifest_path_for(candidate).is_file()
    if precision is None and bare_engine:
        from cosep_deploy.deps import require

        require("tensorrt", purpose="running TensorRT engines")  # a missing TensorRT is the first thing to say
        raise click.UsageError(
            f"{candidate} has no manifest saying what precision it was built at: give --precision fp32|fp16|int8 "
            "for the tolerances"
        )
    if run_dir is not None:
        bundle = data_for_run(load_run_spec(run_dir))
        n = min(samples, len(bundle.val))
        images = torch.stack([bundle.val[i][0] for i in range(n)]).numpy().astype(np.float32)
        what = "validation images"
    else:
        n, what = samples, "random inputs (seed 0)"
        images = np.random.default_rng(0).standard_normal((n, *_fixed_input_shape(reference))).astype(np.float32)
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
    obj.echo(f"{candidate} matches {reference} on {n} {what} ({result.precision} tolerances)")


def _fixed_input_shape(path: str) -> list[int]:
    """One sample's input shape (after the batch dim) of an engine file, which must be fixed."""
    from cosep_deploy.backends.select import runner_for
    from cosep_deploy.errors import ConfigError

    with runner_for(path) as runner:
        shape = list(next(iter(runner.info().input_shapes.values()), ()))[1:]
    if not shape or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ConfigError(f"{path} has no fixed input shape ({shape}); compare on a run's data with --run")
    return shape
