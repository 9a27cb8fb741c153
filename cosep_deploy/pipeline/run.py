"""``run_pipeline``: dense -> prune -> fine-tune -> export -> build -> bench -> report, in one run dir.

Stages are resumable: each finished stage records a fingerprint of its inputs (its configuration and the
sha256 of the artifacts it read) in ``RUN/stages/<stage>.json``. A later run skips a stage whose
fingerprint is unchanged and whose outputs are still there, so an interrupted run continues where it
stopped and a changed option re-runs only the stages downstream of it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cosep_deploy import distributed as ddist
from cosep_deploy.artifacts import read_json, sha256_file, write_json
from cosep_deploy.bench.harness import BenchConfig
from cosep_deploy.bench.html_report import write_html_report
from cosep_deploy.bench.report import write_report
from cosep_deploy.export.onnx import ExportConfig
from cosep_deploy.export.precision import PrecisionConfig
from cosep_deploy.finetune.config import DENSE_TRAINING, FINETUNING, TrainConfig
from cosep_deploy.pipeline.build import build_stage
from cosep_deploy.pipeline.deploy import bench_stage, export_stage, summary_rows
from cosep_deploy.pipeline.layout import RunLayout
from cosep_deploy.pipeline.stages import RunSpec, finetune_stage, layers_stage, prune_stage, train_stage
from cosep_deploy.progress import Progress, resolve_progress
from cosep_deploy.prune.api import PruneConfig
from cosep_deploy.rundir import writes_run
from cosep_deploy.verbosity import get_logger

if TYPE_CHECKING:
    from cosep_deploy.latency.request import LatencyRequest

__all__ = ["STAGES", "PipelineConfig", "run_pipeline"]

STAGES = ("train", "prune", "finetune", "export", "build", "bench")
SHARDED_STAGES = ("train", "prune", "finetune")  # under torchrun every process works on a shard of these
log = get_logger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class PipelineConfig:
    """The whole job. Defaults are the demo: CIFAR ResNet-20 on the embedded digits data."""

    run: RunSpec = dataclasses.field(default_factory=lambda: RunSpec(model="resnet20", data="digits"))
    weights: str | None = None  # dense weights to load instead of training
    train: TrainConfig = DENSE_TRAINING
    prune: PruneConfig = dataclasses.field(default_factory=PruneConfig)
    finetune: TrainConfig = FINETUNING
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    precision: PrecisionConfig = dataclasses.field(default_factory=PrecisionConfig)
    bench: BenchConfig = dataclasses.field(default_factory=BenchConfig)
    target: str = "cpu-onnxruntime"
    bench_precision: str = "fp32"  # which exported and built precision the bench stage times
    threads: int | None = None
    force: bool = False  # re-run every stage even if its inputs did not change
    latency: LatencyRequest | None = None  # prune to a measured speed-up on the target instead (issue 14)


def _fingerprint(**parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def _hashes(*paths: Path) -> dict[str, str | None]:
    return {f"{p.parent.name}/{p.name}": sha256_file(p) if p.is_file() else None for p in paths}


def _stage_inputs(layout: RunLayout, cfg: PipelineConfig, stage: str) -> dict[str, Any]:
    """What decides a stage's output: its options and the hashes of the artifacts it reads."""
    engines = layout.engines(cfg.target)
    tuned = layout.finetuned if cfg.finetune.epochs > 0 else layout.pruned
    if stage == "train":
        weights = _hashes(Path(cfg.weights)) if cfg.weights else None
        return {"run": dataclasses.asdict(cfg.run), "train": cfg.train.to_json(), "weights": weights}
    if stage == "prune":
        inputs = {"prune": cfg.prune.to_json(), "dense": _hashes(layout.dense / "model.safetensors")}
        if cfg.latency is not None:  # only then: plain runs keep their fingerprints
            inputs["latency"] = cfg.latency.to_json()
        return inputs
    if stage == "finetune":
        return {"finetune": cfg.finetune.to_json(), "pruned": _hashes(layout.pruned / "weights.safetensors")}
    if stage == "export":
        return {
            "export": dataclasses.asdict(cfg.export),
            "precision": dataclasses.asdict(cfg.precision),
            "dense": _hashes(layout.dense / "model.safetensors"),
            "pruned": _hashes(tuned / "weights.safetensors"),
        }
    if stage == "build":
        return {
            "target": cfg.target,
            "threads": cfg.threads,
            "onnx": _hashes(layout.onnx / "dense.onnx", layout.onnx / "pruned.onnx"),
        }
    return {
        "bench": dataclasses.asdict(cfg.bench),
        "precision": cfg.bench_precision,
        "target": cfg.target,
        "threads": cfg.threads,
        "engines": _hashes(engines / "dense.onnx", engines / "pruned.onnx"),
    }


def _outputs_present(layout: RunLayout, cfg: PipelineConfig, stage: str) -> bool:
    required = {
        "train": [layout.dense / "model.json", layout.dense / "train.json"],
        "prune": [layout.pruned / "plan.json", layout.pruned / "prune.json"],
        "finetune": [layout.finetuned / "plan.json", layout.finetuned / "finetune.json"],
        "export": [layout.onnx / "dense.onnx", layout.onnx / "pruned.onnx"],
        "build": [layout.engines(cfg.target) / "dense.onnx", layout.engines(cfg.target) / "pruned.onnx"],
        "bench": [layout.bench / "bench.json"],
    }[stage]
    return all(p.is_file() for p in required)


def _output_hashes(layout: RunLayout, cfg: PipelineConfig, stage: str) -> dict[str, str | None]:
    """The stage's output files by hash: a stage whose outputs someone else rewrote (a standalone `prune`
    with other options, a hand edit) is not up to date, whoever changed them."""
    folder = {
        "train": layout.dense,
        "prune": layout.pruned,
        "finetune": layout.finetuned,
        "export": layout.onnx,
        "build": layout.engines(cfg.target),
        "bench": layout.bench,
    }[stage]
    if stage == "bench":
        return _hashes(layout.bench / "bench.json")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")) if folder.is_dir() else []
    return _hashes(*files)


def _up_to_date(layout: RunLayout, cfg: PipelineConfig, stage: str, record: Path, fingerprint: str) -> bool:
    if cfg.force or not record.is_file() or not _outputs_present(layout, cfg, stage):
        return False
    saved = read_json(record, what="stage record")
    if not isinstance(saved, dict):
        return False
    return saved.get("fingerprint") == fingerprint and saved.get("outputs") == _output_hashes(layout, cfg, stage)


def _prune(layout: RunLayout, cfg: PipelineConfig, prog: Progress) -> Any:
    if cfg.latency is None:
        return prune_stage(layout.root, cfg.prune, progress=prog)
    from cosep_deploy.latency.stage import latency_prune_stage

    return latency_prune_stage(layout.root, cfg.prune, cfg.latency, progress=prog)


@writes_run(create=True)
def run_pipeline(
    out: str | os.PathLike[str], config: PipelineConfig | None = None, *, progress: Progress | None = None
) -> dict[str, Any]:
    """Run every stage into ``out`` (skipping up-to-date ones) and return the summary.

    Inputs (model name, data spec and path, weights, output directory) are checked by the first stage
    before it writes anything. Under torchrun, training, statistics and fine-tuning are shared by every
    process; export, build and bench run on rank 0 alone (the others return an empty dict). The summary
    is also written to ``summary.json`` and ``report.md``.
    """
    cfg = config or PipelineConfig()
    prog = resolve_progress(progress)
    layout = RunLayout(Path(out))
    timings: dict[str, float | str] = {}
    actions: dict[str, Callable[[], Any]] = {
        "train": lambda: train_stage(layout.root, cfg.run, cfg.train, weights=cfg.weights, progress=prog),
        "prune": lambda: _prune(layout, cfg, prog),
        "finetune": lambda: finetune_stage(layout.root, cfg.finetune, progress=prog),
        "export": lambda: export_stage(layout.root, cfg.export, precision=cfg.precision, progress=prog),
        "build": lambda: build_stage(layout.root, target=cfg.target, threads=cfg.threads, progress=prog),
        "bench": lambda: bench_stage(
            layout.root, cfg.bench, target=cfg.target, precision=cfg.bench_precision, threads=cfg.threads, progress=prog
        ),
    }
    for stage in STAGES:
        if stage == "finetune" and cfg.finetune.epochs == 0:
            shutil.rmtree(layout.finetuned, ignore_errors=True)  # a stale one would be exported instead
            (layout.root / "stages" / "finetune.json").unlink(missing_ok=True)
            timings[stage] = "skipped (0 epochs)"
            prog.log("[stage] finetune: skipped (0 epochs)")
            continue
        record = layout.root / "stages" / f"{stage}.json"
        fingerprint = _fingerprint(**_stage_inputs(layout, cfg, stage))
        if _up_to_date(layout, cfg, stage, record, fingerprint):
            timings[stage] = "up to date"
            prog.log(f"[stage] {stage}: up to date, skipped")
            log.debug("stage %s: recorded fingerprint %s matches its inputs and outputs", stage, fingerprint[:12])
            continue
        log.info("stage %s: running (inputs fingerprint %s; no matching record in %s)", stage, fingerprint[:12], record)
        start = time.perf_counter()
        if stage in SHARDED_STAGES or ddist.is_main_process():
            actions[stage]()
        timings[stage] = round(time.perf_counter() - start, 2)
        if ddist.is_main_process():
            outputs = _output_hashes(layout, cfg, stage)
            write_json(
                record, {"stage": stage, "fingerprint": fingerprint, "outputs": outputs, "seconds": timings[stage]}
            )
            prog.log(f"[stage] {stage}: done in {timings[stage]:.1f} s")
        ddist.barrier()
    if not ddist.is_main_process():
        return {}
    summary = summary_rows(layout.root)
    summary["stages"] = timings
    layers_stage(layout.root, threads=cfg.threads, progress=prog)  # bench/layers.json: where the time goes
    write_report(layout.root, summary)
    write_html_report(layout.root, summary)
    write_json(layout.summary_json, summary)
    return summary
