"""Stage functions over a run directory, and the end-to-end pipeline (the CLI wraps these)."""

from ..prune.plan import load_pruned
from .build import build_stage
from .deploy import bench_stage, export_stage, summary_rows
from .layout import RunLayout
from .run import PipelineConfig, run_pipeline
from .stages import RunSpec, finetune_stage, prune_stage, train_stage

__all__ = [
    "PipelineConfig",
    "RunLayout",
    "RunSpec",
    "bench_stage",
    "build_stage",
    "export_stage",
    "finetune_stage",
    "load_pruned",
    "prune_stage",
    "run_pipeline",
    "summary_rows",
    "train_stage",
]
