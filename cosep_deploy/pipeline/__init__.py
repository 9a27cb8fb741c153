"""Stage functions over a run directory, and the end-to-end pipeline (the CLI wraps these)."""

from cosep_deploy.pipeline.build import build_stage
from cosep_deploy.pipeline.deploy import bench_stage, export_stage, summary_rows
from cosep_deploy.pipeline.layout import RunLayout
from cosep_deploy.pipeline.run import PipelineConfig, run_pipeline
from cosep_deploy.pipeline.stages import RunSpec, finetune_stage, prune_stage, train_stage
from cosep_deploy.prune.plan import load_pruned

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
