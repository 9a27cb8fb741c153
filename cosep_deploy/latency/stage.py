"""The latency-targeted prune as a run-directory stage (what ``prune --target-speedup`` runs).

Like :func:`cosep_deploy.pipeline.stages.prune_stage` it reads the run's dense model and data and writes
``pruned/`` atomically at the very end: a refused request (speed-up at or below 1, out of reach, a
TensorRT target without its table, a foreign or stale table) leaves the run directory as it was.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from cosep_deploy.latency.request import LatencyRequest
from cosep_deploy.progress import Progress
from cosep_deploy.prune.api import PruneConfig
from cosep_deploy.prune.plan import PruningPlan

__all__ = ["latency_prune_stage"]


def latency_prune_stage(
    run: str | os.PathLike[str], config: PruneConfig, request: LatencyRequest, *, progress: Progress | None = None
) -> tuple[PruningPlan, float]:
    """Prune the run's dense model to the requested speed-up on the target; write ``pruned/``. Returns the
    plan and the pruned model's validation top-1 before fine-tuning."""
    from cosep_deploy import distributed as ddist
    from cosep_deploy.data import ClassBalancedSubset, make_loader
    from cosep_deploy.errors import ConfigError
    from cosep_deploy.finetune.loop import evaluate
    from cosep_deploy.latency.prune_latency import prune_to_latency
    from cosep_deploy.pipeline.layout import RunLayout
    from cosep_deploy.pipeline.stages import data_for_run, load_dense, load_run_spec, prune_data_info
    from cosep_deploy.prune.plan import save_pruned

    if ddist.is_distributed():  # the closed loop times engines: processes sharing the machine would skew it
        raise ConfigError("latency-targeted pruning runs in one process: start it without torchrun")
    layout = RunLayout(Path(run))
    spec = load_run_spec(run)
    model, mspec = load_dense(run)
    bundle = data_for_run(spec)
    subset = ClassBalancedSubset(bundle.train, config.images_per_class, seed=config.seed)
    loader = make_loader(subset, batch_size=128)
    pruned, plan = prune_to_latency(
        model,
        loader,
        example_inputs=torch.zeros((2, *bundle.input_shape)),
        config=config,
        request=request,
        base_spec=mspec.to_json(),
        data_info=prune_data_info(layout, spec, config),
        progress=progress,
    )
    acc = evaluate(pruned, make_loader(bundle.val, batch_size=256))
    save_pruned(plan, pruned, layout.pruned, extra={"prune.json": {"val_top1": acc}})
    return plan, acc
