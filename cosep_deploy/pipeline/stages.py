"""The stages as public functions over a run directory; the CLI commands are thin wrappers of these.

Each stage validates its inputs before writing anything, and writes its output directory atomically
(staged, then renamed), so a failed stage never leaves a half-written artifact.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from cosep_deploy import distributed as ddist
from cosep_deploy.artifacts import ensure_writable_dir, read_json, sha256_file, staged_dir, write_json
from cosep_deploy.errors import ArtifactError, CosepError
from cosep_deploy.finetune.loop import TrainConfig, TrainResult, evaluate, train_model
from cosep_deploy.pipeline.layout import RunLayout
from cosep_deploy.progress import Progress, resolve_progress
from cosep_deploy.prune.api import PruneConfig, prune
from cosep_deploy.prune.plan import PruningPlan, load_pruned, save_pruned
from cosep_deploy.rundir import writes_run

if TYPE_CHECKING:
    from cosep_deploy.bench.layers import LayersReport

__all__ = [
    "RunSpec",
    "data_for_run",
    "finetune_stage",
    "layers_stage",
    "load_dense",
    "load_final_pruned",
    "load_run_spec",
    "prune_data_info",
    "prune_stage",
    "train_stage",
]


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunSpec:
    """What a run is about: recorded in ``run.json`` by the first stage, read by the others."""

    model: str
    data: str
    image_size: int | None = None
    channels: int | None = None
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"schema": "RunSpec", "schema_version": 1, **dataclasses.asdict(self)}


def load_run_spec(run: str | os.PathLike[str]) -> RunSpec:
    layout = RunLayout(Path(run))
    raw = read_json(layout.run_json, what="run description (run.json; run `cosep-deploy train` first)")
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), str) or not isinstance(raw.get("data"), str):
        raise ArtifactError(f"{layout.run_json} is not a valid run description (needs 'model' and 'data' strings)")
    for key in ("image_size", "channels", "seed"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ArtifactError(f"{layout.run_json}: {key!r} must be an integer or null, found {value!r:.40}")
    try:
        return RunSpec(**{f.name: raw[f.name] for f in dataclasses.fields(RunSpec) if f.name in raw})
    except TypeError as exc:
        raise ArtifactError(f"{layout.run_json} is not a valid run description: {exc}") from exc


def data_for_run(spec: RunSpec) -> Any:
    from cosep_deploy.data import load_dataset

    return load_dataset(spec.data, image_size=spec.image_size, channels=spec.channels, seed=spec.seed)


def _val_loader(bundle: Any, batch_size: int = 256) -> Any:
    from cosep_deploy.data import make_loader

    return make_loader(bundle.val, batch_size=batch_size)


@writes_run(create=True)
def train_stage(
    run: str | os.PathLike[str],
    spec: RunSpec,
    config: TrainConfig,
    *,
    weights: str | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Build the dense model and train it (or load ``weights`` and only evaluate); write ``dense/``."""
    from cosep_deploy.models import ModelSpec, build_model, load_weights, save_checkpoint

    prog = resolve_progress(progress)
    layout = RunLayout(Path(run))
    bundle = data_for_run(spec)  # validates the data spec and path before anything is written
    mspec = ModelSpec(
        name=spec.model,
        num_classes=bundle.num_classes,
        in_channels=bundle.input_shape[0],
        image_size=bundle.input_shape[1],
    )
    model = build_model(mspec, seed=spec.seed)
    if weights is not None:
        load_weights(model, weights)
    ensure_writable_dir(layout.root)
    if weights is None:
        result = train_model(model, bundle.train, bundle.val, config, progress=prog, description="training dense")
    else:
        acc = evaluate(model, _val_loader(bundle))
        result = TrainResult(val_top1=acc, epochs=0, seconds=0.0, history=[])
    if ddist.is_main_process():  # under torchrun every process trained the same replica
        write_json(layout.run_json, spec.to_json())
        with staged_dir(layout.dense, overwrite=True) as tmp:
            save_checkpoint(model, mspec, tmp, extra={"data": bundle.description, "weights_source": weights})
            write_json(
                tmp / "train.json",
                {"config": config.to_json(), "result": result.to_json(), "synthetic_data": bundle.is_synthetic},
            )
    ddist.barrier()
    return result


def load_dense(run: str | os.PathLike[str]) -> tuple[nn.Module, Any]:
    from cosep_deploy.models import load_checkpoint

    layout = RunLayout(Path(run))
    if not (layout.dense / "model.json").is_file():
        raise ArtifactError(
            f"no dense model in {layout.root} (missing dense/model.json): run `cosep-deploy train` first"
        )
    model, mspec, _ = load_checkpoint(layout.dense)
    return model.eval(), mspec


def prune_data_info(layout: RunLayout, spec: RunSpec, config: PruneConfig) -> dict[str, Any]:
    """What the plan records of the data a prune read: the spec, the statistics sample, the dense weights."""
    return {
        "spec": spec.data,
        "images_per_class": config.images_per_class,
        "dense_weights_sha256": sha256_file(layout.dense / "model.safetensors"),
    }


@writes_run()
def prune_stage(
    run: str | os.PathLike[str], config: PruneConfig, *, progress: Progress | None = None
) -> tuple[PruningPlan, float]:
    """Prune the run's dense model by class separability; write ``pruned/``. Returns the plan and the
    pruned model's validation top-1 before fine-tuning."""
    from cosep_deploy.data import ClassBalancedSubset, make_loader

    layout = RunLayout(Path(run))
    spec = load_run_spec(run)
    model, mspec = load_dense(run)
    bundle = data_for_run(spec)
    subset = ClassBalancedSubset(bundle.train, config.images_per_class, seed=config.seed)
    loader = make_loader(ddist.shard_dataset(subset), batch_size=128)  # a shard per process under torchrun
    example = torch.zeros((2, *bundle.input_shape))
    between = None
    if config.between_epochs_resolved > 0:  # the paper's short fine-tune after each pruned layer
        from cosep_deploy.finetune.between import BetweenLayers, BetweenLayersConfig

        bl = BetweenLayersConfig(
            epochs=config.between_epochs_resolved,
            fraction=config.between_fraction,
            lr=config.between_lr,
            seed=config.seed,
        )
        between = BetweenLayers(bundle.train, bl)
    pruned, plan = prune(
        model,
        loader,
        example_inputs=example,
        config=config,
        between_layers=between,
        base_spec=mspec.to_json(),
        data_info=prune_data_info(layout, spec, config),
        progress=progress,
    )
    acc = evaluate(pruned, _val_loader(bundle))
    if ddist.is_main_process():
        save_pruned(plan, pruned, layout.pruned, extra={"prune.json": {"val_top1": acc}})
    ddist.barrier()
    return plan, acc


@writes_run()
def finetune_stage(
    run: str | os.PathLike[str], config: TrainConfig, *, progress: Progress | None = None
) -> TrainResult:
    """Fine-tune the pruned model (optionally distilled from the dense one); write ``finetuned/``."""
    from cosep_deploy.pipeline.chain import check_plan

    layout = RunLayout(Path(run))
    spec = load_run_spec(run)
    if not (layout.pruned / "plan.json").is_file():
        raise ArtifactError(f"no pruned model in {layout.root}: run `cosep-deploy prune` first")
    check_plan(layout, layout.pruned)
    source = {"pruned_weights_sha256": sha256_file(layout.pruned / "weights.safetensors")}
    model, plan = load_pruned(layout.pruned)
    bundle = data_for_run(spec)
    teacher = load_dense(run)[0] if config.distill_alpha > 0 else None
    result = train_model(
        model, bundle.train, bundle.val, config, teacher=teacher, progress=progress, description="fine-tuning pruned"
    )
    if ddist.is_main_process():
        save_pruned(
            plan,
            model,
            layout.finetuned,
            extra={"finetune.json": {"config": config.to_json(), "result": result.to_json(), "source": source}},
        )
    ddist.barrier()
    return result


def load_final_pruned(run: str | os.PathLike[str]) -> tuple[nn.Module, PruningPlan, str]:
    """The fine-tuned model if fine-tuning ran, else the pruned one; and which it is."""
    from cosep_deploy.pipeline.chain import final_pruned_dir

    path, stage = final_pruned_dir(RunLayout(Path(run)))  # refuses a stale or mixed chain
    model, plan = load_pruned(path)
    return model, plan, stage


@writes_run()
def layers_stage(
    run: str | os.PathLike[str],
    *,
    precision: str = "fp32",
    batch: int = 1,
    iterations: int = 50,
    warmup: int = 5,
    threads: int | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> LayersReport:
    """Profile the run's exported dense and pruned ONNX per layer with ONNX Runtime; write ``bench/layers.json``,
    which the report turns into its "where time goes" section.

    Up to date, and not profiled again, while ``bench/layers.json`` holds a profile of these very files (by
    sha256) with these settings and this ONNX Runtime; ``force`` profiles anyway.
    """
    import onnxruntime as ort

    from cosep_deploy.bench.layer_sources import profile_onnxruntime

    layout = RunLayout(Path(run))
    files = _profiled_onnx(layout, precision)
    n_threads = threads or min(os.cpu_count() or 1, 2)
    wanted = {
        "batch": batch,
        "iterations": iterations,
        "warmup": warmup,
        "threads": n_threads,
        "runtime_version": str(ort.__version__),
    }
    old = None if force else _current_layers(layout, files, wanted)
    if old is not None:
        return old
    report = profile_onnxruntime(
        files["dense"],
        files["pruned"],
        batch=batch,
        iterations=iterations,
        threads=n_threads,
        warmup=warmup,
        progress=progress,
    )
    report.save(layout.layers_json)
    return report


def _profiled_onnx(layout: RunLayout, precision: str) -> dict[str, Path]:
    """The run's dense and pruned ONNX files of ``precision``, once they exist and belong to the run's chain."""
    from cosep_deploy.pipeline.chain import check_onnx_files

    suffix = "" if precision == "fp32" else f".{precision}"
    files = {n: layout.onnx / f"{n}{suffix}.onnx" for n in ("dense", "pruned")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise ArtifactError(
            f"missing {', '.join(missing)}: run `cosep-deploy export --run {shlex.quote(str(layout.root))}` first"
        )
    check_onnx_files(layout, [p.name for p in files.values()])
    return files


def _current_layers(layout: RunLayout, files: Mapping[str, Path], wanted: Mapping[str, Any]) -> LayersReport | None:
    """``bench/layers.json`` when it profiles these very files (by sha256) with these settings, else None."""
    from cosep_deploy.bench.layers import LayersReport

    if not layout.layers_json.is_file():
        return None
    try:
        old = LayersReport.load(layout.layers_json)
    except CosepError:
        return None  # unreadable or an older schema: profile again
    hashes = {f"{n}_sha256": sha256_file(p) for n, p in files.items()}
    if all(old.settings.get(k) == v for k, v in wanted.items()) and (old.provenance.get("inputs") or {}) == hashes:
        return old
    return None
