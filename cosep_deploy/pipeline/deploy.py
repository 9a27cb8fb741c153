"""Deployment stages over a run directory: export ONNX, build engines, benchmark dense vs pruned."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from shlex import quote
from typing import Any

import torch

from cosep_deploy.artifacts import read_json, staged_dir, write_json
from cosep_deploy.bench.harness import BenchConfig, BenchReport, bench_runners
from cosep_deploy.errors import ArtifactError, BenchError, ConfigError
from cosep_deploy.export.onnx import ExportConfig, OnnxArtifact, onnx_from_model
from cosep_deploy.export.precision import PrecisionConfig
from cosep_deploy.pipeline.chain import bench_sources
from cosep_deploy.pipeline.layout import RunLayout
from cosep_deploy.pipeline.stages import data_for_run, load_dense, load_final_pruned, load_run_spec
from cosep_deploy.progress import Progress, resolve_progress
from cosep_deploy.rundir import writes_run

__all__ = ["VALIDATION_SAMPLES", "alignment_stage", "bench_stage", "export_stage", "summary_rows"]

VALIDATION_SAMPLES = 64


def _real_sample(run: str | os.PathLike[str], n: int = VALIDATION_SAMPLES) -> torch.Tensor:
    """The first ``n`` validation images: exports are validated on real inputs, not noise."""
    bundle = data_for_run(load_run_spec(run))
    images = [bundle.val[i][0] for i in range(min(n, len(bundle.val)))]
    return torch.stack(images)


@writes_run()
def export_stage(
    run: str | os.PathLike[str],
    config: ExportConfig | None = None,
    *,
    precision: PrecisionConfig | None = None,
    progress: Progress | None = None,
) -> dict[str, OnnxArtifact]:
    """Export the dense and the (fine-tuned) pruned model to ``onnx/``, validate both against PyTorch,
    write their fp16/int8 variants (int8 calibrated on a class-balanced sample of the training split) and
    record every file's top-1 on the validation split (ONNX Runtime, CPU) in ``onnx/accuracy.json``."""
    from cosep_deploy.artifacts import sha256_file
    from cosep_deploy.export.accuracy import onnx_accuracy
    from cosep_deploy.export.calibration import calibration_set_from_dataset
    from cosep_deploy.export.precision import precision_variants_from_onnx
    from cosep_deploy.pipeline.chain import SOURCES_FILE, onnx_sources

    prog = resolve_progress(progress)
    layout = RunLayout(Path(run))
    sources = onnx_sources(layout)  # refuses a stale or mixed chain before minutes of work
    dense, mspec = load_dense(run)
    pruned, plan, stage = load_final_pruned(run)
    bundle = data_for_run(load_run_spec(run))
    sample = _real_sample(run)
    pcfg = precision or PrecisionConfig()
    calibration = None
    if "int8" in pcfg.precisions:
        calibration = calibration_set_from_dataset(
            bundle.train,
            pcfg.calibration_per_class,
            num_classes=bundle.num_classes,
            seed=pcfg.seed,
            source=str(bundle.spec),
        )
    out: dict[str, OnnxArtifact] = {}
    accuracy: dict[str, Any] = {"split": "val", "data": bundle.description, "runtime": "onnxruntime (CPU)"}
    total = 2 * (1 + len(pcfg.precisions))
    with staged_dir(layout.onnx, overwrite=True) as tmp, prog.task("exporting ONNX", total=total) as task:
        for name, model, source in (
            ("dense", dense, {"model": mspec.to_json(), "stage": "dense"}),
            ("pruned", pruned, {"model": plan.base_model, "stage": stage, "method": plan.method}),
        ):
            out[name] = onnx_from_model(model, sample, tmp / f"{name}.onnx", config, source=source)
            accuracy[f"{name}.onnx"] = {"precision": "fp32", **onnx_accuracy(tmp / f"{name}.onnx", bundle.val)}
            task.advance()
            for prec, art in precision_variants_from_onnx(
                tmp / f"{name}.onnx", tmp, pcfg, calibration=calibration
            ).items():
                out[f"{name}.{prec}"] = art
                accuracy[art.path] = {"precision": prec, **onnx_accuracy(tmp / art.path, bundle.val)}
                task.advance()
        write_json(tmp / "accuracy.json", accuracy)
        files = {p.name: sha256_file(p) for p in sorted(tmp.glob("*.onnx"))}
        write_json(tmp / SOURCES_FILE, {"from": sources, "files": files})
    return out


@writes_run()
def bench_stage(
    run: str | os.PathLike[str],
    config: BenchConfig | None = None,
    *,
    target: str = "cpu-onnxruntime",
    precision: str = "fp32",
    threads: int | None = None,
    progress: Progress | None = None,
    trtexec: bool = False,
    device: int = 0,
) -> BenchReport:
    """Time the dense and the pruned engine of ``target`` and ``precision`` interleaved, on this machine;
    write ``bench/bench.json``. Jetson engines are benchmarked on the board by their bundle's script.
    ``trtexec=True`` times TensorRT engines with the trtexec binary instead of the Python runtime."""
    from cosep_deploy.backends.base import Runner

    layout = RunLayout(Path(run))
    engines = layout.engines(target)
    _check_target_precision(target, precision)
    if (engines / "bundle").is_dir():
        raise BenchError(
            f"{target} engines are built and benchmarked on the board: copy {engines}/bundle/ there, run "
            f"build_and_bench.sh (see its README.md), then `cosep-deploy collect --run {run} BUNDLE_DIR`"
        )
    suffix = "" if precision == "fp32" else f".{precision}"
    sources = bench_sources(layout, target)  # the engines were built from the run's current chain
    if trtexec:
        return _bench_with_trtexec(layout, engines, suffix, config, progress, sources)
    runners: dict[str, Runner] = {}
    for n in ("dense", "pruned"):
        onnx_engine, trt_engine = engines / f"{n}{suffix}.onnx", engines / f"{n}{suffix}.engine"
        if onnx_engine.is_file():
            from cosep_deploy.backends.onnxruntime.runner import OnnxRuntimeRunner

            if device != 0:
                raise ConfigError(f"--device picks a GPU for TensorRT engines; {target}'s engines run on the CPU")
            runners[n] = OnnxRuntimeRunner(onnx_engine, threads=threads, precision=precision, name=n)
        elif trt_engine.is_file():
            from cosep_deploy.backends.tensorrt.runner import TensorRTRunner

            runners[n] = TensorRTRunner(trt_engine, device=device)
        else:
            raise ArtifactError(
                f"no {precision} engine for {n} in {engines}: run `cosep-deploy build --run {quote(str(layout.root))} "
                f"--target {quote(target)} --precisions {precision}` (and, if onnx/ has no {precision} file, "
                f"`cosep-deploy export --run {quote(str(layout.root))} --precisions {precision}` before it)"
            )
    macs, shape = _plan_macs_and_shape(layout)
    with runners["dense"], runners["pruned"]:
        report = bench_runners(runners, shape, config, baseline="dense", macs=macs, progress=progress)
    _save_bench(layout, report, sources)
    return report


def _check_target_precision(target: str, precision: str) -> None:
    """An unknown target is named as such (not "missing engine"); a precision it does not run is refused."""
    from cosep_deploy.targets import get_target

    profile = get_target(target)
    if precision not in profile.precisions:
        raise ConfigError(
            f"target {target} runs {', '.join(profile.precisions)}, not {precision}: choose one of those "
            "with --precision, or another --target (see `cosep-deploy targets`)"
        )


def _save_bench(layout: RunLayout, report: BenchReport, sources: dict[str, Any]) -> None:
    """``bench/bench.json`` alone, atomically (profile and alignment results beside it stay), with the hashes
    of the engines it timed."""
    write_json(layout.bench / "bench.json", {**report.to_json(), "sources": sources})


def _plan_macs_and_shape(layout: RunLayout) -> tuple[dict[str, int], list[int]]:
    from cosep_deploy.pipeline.chain import final_pruned_dir
    from cosep_deploy.prune.plan import read_plan

    plan = read_plan(final_pruned_dir(layout)[0] / "plan.json")
    macs = {"dense": int(plan.cost_before["macs"]), "pruned": int(plan.cost_after["macs"])}
    return macs, [int(d) for d in plan.input_shape]


def _bench_with_trtexec(
    layout: RunLayout,
    engines: Path,
    suffix: str,
    config: BenchConfig | None,
    progress: Progress | None,
    sources: dict[str, Any],
) -> BenchReport:
    from cosep_deploy.backends.tensorrt.plan import summarize_onnx
    from cosep_deploy.bench.trtexec_bench import bench_trtexec

    files = {n: engines / f"{n}{suffix}.engine" for n in ("dense", "pruned")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise ArtifactError(f"--trtexec needs TensorRT engines; missing {', '.join(missing)}: build a TensorRT target")
    macs, shape = _plan_macs_and_shape(layout)
    input_name = next(iter(summarize_onnx(layout.onnx / "dense.onnx").inputs))
    report = bench_trtexec(files, input_name, shape, config, baseline="dense", macs=macs, progress=progress)
    _save_bench(layout, report, sources)
    return report


def summary_rows(run: str | os.PathLike[str]) -> dict[str, Any]:
    """The one-screen summary: accuracy, MACs, params and latency, dense vs pruned, from one chain only.

    A stale or mixed plan is refused (its MACs would sit beside another model's accuracy); ONNX accuracy
    and latency from an older chain are left out, each with a note in ``summary["stale"]``.
    """
    from cosep_deploy.errors import StaleArtifactError
    from cosep_deploy.pipeline.chain import check_bench, check_onnx, final_pruned_dir
    from cosep_deploy.prune.plan import read_plan

    layout = RunLayout(Path(run))
    out: dict[str, Any] = {"run": str(layout.root)}
    tuned, stage = final_pruned_dir(layout)  # checks dense -> plan -> fine-tuned
    train = read_json(layout.dense / "train.json", what="training record")
    out["dense_top1"] = _number(train, ("result", "val_top1"), layout.dense / "train.json")
    out["synthetic_data"] = bool(train.get("synthetic_data", False))
    prune_rec = read_json(layout.pruned / "prune.json", what="pruning record")
    out["pruned_top1_before_finetune"] = _number(prune_rec, ("val_top1",), layout.pruned / "prune.json")
    if stage == "finetuned":
        record = read_json(layout.finetuned / "finetune.json", what="fine-tuning record")
        out["pruned_top1"] = _number(record, ("result", "val_top1"), layout.finetuned / "finetune.json")
    plan = read_plan(tuned / "plan.json")
    out["macs"] = {"dense": plan.cost_before["macs"], "pruned": plan.cost_after["macs"]}
    out["params"] = {"dense": plan.cost_before["params"], "pruned": plan.cost_after["params"]}
    stale: list[str] = []
    if (layout.onnx / "accuracy.json").is_file():  # top-1 of every exported file (ONNX Runtime, CPU)
        try:
            check_onnx(layout)
            out["onnx_top1"] = _onnx_top1(read_json(layout.onnx / "accuracy.json"))
        except StaleArtifactError as exc:
            stale.append(f"ONNX accuracy left out: {exc}")
    bench_file = layout.bench / "bench.json"
    if bench_file.is_file():
        from cosep_deploy.bench.schema import check_bench_json

        bench = check_bench_json(read_json(bench_file, what="benchmark"), bench_file)
        try:
            check_bench(layout, bench)
            out["latency"] = _latency(bench)
            out["bench_settings"] = bench["settings"]
        except StaleArtifactError as exc:
            stale.append(f"latency left out: {exc}")
    if stale:
        out["stale"] = stale
    return out


def _number(record: Any, keys: tuple[str, ...], source: Path) -> float | None:
    value = record
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
        raise ArtifactError(f"{source}: {'.'.join(keys)} must be a number, found {value!r:.40}")
    return value


def _onnx_top1(acc: Any) -> dict[str, Any]:
    if not isinstance(acc, dict):
        raise ArtifactError("onnx/accuracy.json does not hold an object; re-run `cosep-deploy export`")

    def top1(name: str) -> Any:
        entry = acc.get(name)
        return entry.get("top1") if isinstance(entry, dict) else None

    return {
        prec: {m: top1(f"{m}.onnx" if prec == "fp32" else f"{m}.{prec}.onnx") for m in ("dense", "pruned")}
        for prec in ("fp32", "fp16", "int8")
        if f"dense.{prec}.onnx" in acc or prec == "fp32"
    }


def _latency(bench: dict[str, Any]) -> dict[str, Any]:
    dense, pruned = bench["engines"]["dense"]["results"], bench["engines"]["pruned"]["results"]
    return {
        b: {"dense_ms": dense[b]["median_ms"], "pruned_ms": pruned[b]["median_ms"], **bench["speedups"]["pruned"][b]}
        for b in dense
    }


@writes_run()
def alignment_stage(
    run: str | os.PathLike[str],
    candidates: tuple[int, ...],
    config: BenchConfig | None = None,
    *,
    threads: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Sweep channel alignments for the run's dense model at the run's MACs ratio; write
    ``bench/alignment.json`` and return it (with the recommended ``round_to``)."""
    from cosep_deploy.bench.alignment import sweep_alignment
    from cosep_deploy.data import ClassBalancedSubset, make_loader
    from cosep_deploy.prune.api import PruneConfig

    layout = RunLayout(Path(run))
    dense, _ = load_dense(run)
    from cosep_deploy.pipeline.chain import check_plan

    if not (layout.pruned / "plan.json").is_file():
        raise ArtifactError(f"no pruning plan in {layout.root}: run `cosep-deploy prune` first")
    plan = check_plan(layout, layout.pruned)["plan"].to_json()  # made from this run's dense weights
    spec = load_run_spec(run)
    bundle = data_for_run(spec)
    known = {f.name for f in dataclasses.fields(PruneConfig)}
    base = PruneConfig(**{k: v for k, v in plan["config"].items() if k in known and k != "counts"})
    ratio = float(plan["cost_before"]["macs"]) / float(plan["cost_after"]["macs"])
    base = dataclasses.replace(base, target_macs_ratio=max(ratio, 1.01))
    loader = make_loader(ClassBalancedSubset(bundle.train, base.images_per_class, seed=base.seed), batch_size=128)
    example = torch.stack([bundle.val[i][0] for i in range(min(8, len(bundle.val)))])
    result = sweep_alignment(
        dense,
        loader,
        example,
        candidates=candidates,
        prune_config=base,
        bench_config=config,
        threads=threads,
        progress=progress,
    )
    result["macs_ratio_target"] = ratio
    layout.bench.mkdir(parents=True, exist_ok=True)
    write_json(layout.bench / "alignment.json", result)
    return result
