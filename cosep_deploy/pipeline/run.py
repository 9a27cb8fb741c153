"""``run_pipeline``: dense -> prune -> fine-tune -> export -> build -> bench -> report, in one run dir."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

from ..bench.harness import BenchConfig
from ..bench.report import write_report
from ..export.onnx import ExportConfig
from ..finetune.loop import TrainConfig
from ..progress import Progress, resolve_progress
from ..prune.api import PruneConfig
from .deploy import bench_stage, build_stage, export_stage, summary_rows
from .stages import RunSpec, finetune_stage, prune_stage, train_stage

__all__ = ["PipelineConfig", "run_pipeline"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class PipelineConfig:
    """The whole job. Defaults are the demo: CIFAR ResNet-20 on the embedded digits data."""

    run: RunSpec = dataclasses.field(default_factory=lambda: RunSpec(model="resnet20", data="digits"))
    weights: str | None = None  # dense weights to load instead of training
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    prune: PruneConfig = dataclasses.field(default_factory=PruneConfig)
    finetune: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(epochs=8, lr=0.02))
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    bench: BenchConfig = dataclasses.field(default_factory=BenchConfig)
    target: str = "cpu-onnxruntime"
    threads: int | None = None


def run_pipeline(
    out: str | os.PathLike[str], config: PipelineConfig | None = None, *, progress: Progress | None = None
) -> dict[str, Any]:
    """Run every stage into ``out`` and return the summary (also written to ``summary.json``).

    Inputs (model name, data spec and path, weights, output directory) are checked by the first stage
    before it writes anything.
    """
    cfg = config or PipelineConfig()
    prog = resolve_progress(progress)
    run = Path(out)
    timings: dict[str, float] = {}

    def stage(name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        timings[name] = round(time.perf_counter() - start, 2)
        prog.log(f"[stage] {name}: done in {timings[name]:.1f} s")
        return result

    stage("train", train_stage, run, cfg.run, cfg.train, weights=cfg.weights, progress=prog)
    stage("prune", prune_stage, run, cfg.prune, progress=prog)
    if cfg.finetune.epochs > 0:
        stage("finetune", finetune_stage, run, cfg.finetune, progress=prog)
    else:
        prog.log("[stage] finetune: skipped (0 epochs)")
    stage("export", export_stage, run, cfg.export, progress=prog)
    stage("build", build_stage, run, target=cfg.target, threads=cfg.threads, progress=prog)
    stage("bench", bench_stage, run, cfg.bench, target=cfg.target, threads=cfg.threads, progress=prog)
    summary = summary_rows(run)
    summary["stage_seconds"] = timings
    write_report(run, summary)
    from ..artifacts import write_json

    write_json(run / "summary.json", summary)
    return summary
