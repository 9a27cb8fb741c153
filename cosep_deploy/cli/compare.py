"""``cosep-deploy compare``: outputs of two engines on real validation images (Polygraphy comparator)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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

    from cosep_deploy.compare import compare_files
    from cosep_deploy.engines.manifest import manifest_path_for
    from cosep_deploy.errors import ConfigError
    from cosep_deploy.pipeline.stages import data_for_run, load_run_spec

    bare_engine = Path(candidate).suffix in (".engine", ".plan") and not manifest_path_for(candidate).is_file()
    if precision is None and bare_engine:
        from cosep_deploy.deps import require

        require("tensorrt", purpose="running TensorRT engines")  # a missing TensorRT is the first thing to say
        raise click.UsageError(
            f"{candidate} has no manifest saying what precision it was built at: give --precision fp32|fp16|int8 "
            "for the tolerances"
        )
    batch, shape = _input_shape(reference) if Path(reference).is_file() else (None, [])
    if run_dir is not None:
        import torch

        bundle = data_for_run(load_run_spec(run_dir))
        n = _whole_batches(min(samples, len(bundle.val)), batch, reference)
        images = torch.stack([bundle.val[i][0] for i in range(n)]).numpy().astype(np.float32)
        what = "validation images"
    else:
        if not shape or not all(isinstance(d, int) and d > 0 for d in shape):
            raise ConfigError(f"{reference} has no fixed input shape ({shape}); compare on a run's data with --run")
        n, what = _whole_batches(samples, batch, reference), "random inputs (seed 0)"
        images = np.random.default_rng(0).standard_normal((n, *shape)).astype(np.float32)
    result = compare_files(
        reference,
        candidate,
        images,
        batch_size=batch or 32,
        precision=precision,
        rtol=rtol,
        atol=atol,
        check=True,
        candidate_backend=candidate_backend,
    )
    for line in result.lines():
        obj.echo(line)
    obj.echo(f"{candidate} matches {reference} on {n} {what} ({result.precision} tolerances)")


def _input_shape(path: str) -> tuple[int | None, list[Any]]:
    """An engine file's fixed batch size (None if dynamic) and one sample's input shape (after the batch dim)."""
    from cosep_deploy.backends.select import runner_for

    with runner_for(path) as runner:
        full = list(next(iter(runner.info().input_shapes.values()), ()))
    batch = full[0] if full and isinstance(full[0], int) and full[0] > 0 else None
    return batch, full[1:]


def _whole_batches(n: int, batch: int | None, reference: str) -> int:
    """``n`` samples, rounded down to whole batches of a model with a fixed batch size."""
    from cosep_deploy.errors import ConfigError

    if batch is None:
        return n
    if n < batch:
        raise ConfigError(f"{reference} runs batches of exactly {batch}; compare on at least {batch} --samples")
    return n - n % batch
