"""The build stage: one engine per exported model and precision, for a target device profile.

- ``cpu`` targets: ONNX Runtime engines, built here.
- ``jetson`` targets on a machine that is not that board: engines cannot be built off the board, so a
  self-contained deploy bundle per model (ONNX variants, profile, manifest template, build-and-bench
  script) is written instead; on the board itself the TensorRT engines are built directly.
- ``dgpu`` targets (and Jetson on the board): TensorRT engines built with this machine's GPU.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..artifacts import staged_dir, write_json
from ..errors import CosepError
from ..progress import Progress, resolve_progress
from .layout import RunLayout

__all__ = ["MODELS", "build_stage", "onnx_variants"]

MODELS = ("dense", "pruned")


def onnx_variants(layout: RunLayout, model: str) -> dict[str, Path]:
    """The exported ONNX files of one model by precision: ``dense.onnx`` (fp32), ``dense.fp16.onnx`` ..."""
    found = {"fp32": layout.onnx / f"{model}.onnx"}
    for precision in ("fp16", "int8"):
        path = layout.onnx / f"{model}.{precision}.onnx"
        if path.is_file():
            found[precision] = path
    if not found["fp32"].is_file():
        raise CosepError(f"missing {found['fp32']}: run `cosep-deploy export --run {layout.root}` first")
    return found


def _on_jetson() -> bool:
    return Path("/etc/nv_tegra_release").is_file()


def build_stage(
    run: str | os.PathLike[str],
    *,
    target: str = "cpu-onnxruntime",
    precisions: tuple[str, ...] | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Build every model x precision for ``target`` into ``engines/<target>/``; returns what was made.

    ``precisions`` defaults to every exported precision the target supports.
    """
    from ..targets import get_target

    profile = get_target(target)
    layout = RunLayout(Path(run))
    variants = {m: onnx_variants(layout, m) for m in MODELS}
    wanted = precisions or tuple(p for p in ("fp32", "fp16", "int8") if p in profile.precisions)
    for model, files in variants.items():
        missing = [p for p in wanted if p not in files]
        if missing and precisions:
            raise CosepError(
                f"{model}: no {', '.join(missing)} ONNX in {layout.onnx}; export it with "
                f"`cosep-deploy export --run {layout.root} --precisions {','.join(precisions)}`"
            )
        variants[model] = {p: f for p, f in files.items() if p in wanted}
    prog = resolve_progress(progress)
    start = time.perf_counter()
    made: dict[str, Any] = {"target": profile.name, "kind": profile.kind}
    with staged_dir(layout.engines(profile.name), overwrite=True) as tmp:
        if profile.kind == "cpu":
            made["engines"] = _build_onnxruntime(variants, tmp, profile.name, threads, prog)
        elif profile.kind == "jetson" and not _on_jetson():
            made["bundles"] = _write_bundles(variants, tmp, profile, prog)
        else:
            made["engines"] = _build_tensorrt(variants, tmp, profile, prog)
        made["seconds"] = round(time.perf_counter() - start, 3)
        write_json(tmp / "build.json", made)
    return made


def _build_each(
    variants: dict[str, dict[str, Path]], label: str, prog: Progress, build_one: Callable[[Path, str, str], Any]
) -> dict[str, Any]:
    """Call ``build_one(onnx, engine_stem, precision)`` for every model x precision; collect manifests."""
    made: dict[str, Any] = {}
    with prog.task(label, total=sum(len(v) for v in variants.values())) as task:
        for model, files in variants.items():
            for precision, src in files.items():
                name = model if precision == "fp32" else f"{model}.{precision}"
                made[name] = build_one(src, name, precision).to_json()
                task.advance()
    return made


def _build_onnxruntime(
    variants: dict[str, dict[str, Path]], out: Path, target: str, threads: int | None, prog: Progress
) -> dict[str, Any]:
    from ..build.onnxruntime import ort_engine_from_onnx

    return _build_each(
        variants,
        f"building ONNX Runtime engines for {target}",
        prog,
        lambda src, name, precision: ort_engine_from_onnx(
            src, out / f"{name}.onnx", threads=threads, target=target, precision=precision
        ),
    )


def _write_bundles(variants: dict[str, dict[str, Path]], out: Path, profile: Any, prog: Progress) -> dict[str, str]:
    from ..build.bundle import jetson_bundle_from_onnx

    made = {}
    with prog.task(f"writing {profile.name} deploy bundles (engines are built on the board)", total=2) as task:
        for model, files in variants.items():
            path = jetson_bundle_from_onnx(files, profile, out / f"bundle-{model}", model_name=model)
            made[model] = path.name
            task.advance()
    return made


def _build_tensorrt(variants: dict[str, dict[str, Path]], out: Path, profile: Any, prog: Progress) -> dict[str, Any]:
    from ..backends.tensorrt import TensorRTBuildConfig, engine_from_onnx

    return _build_each(
        variants,
        f"building TensorRT engines for {profile.name}",
        prog,
        lambda src, name, precision: engine_from_onnx(
            src, out / f"{name}.engine", TensorRTBuildConfig.for_target(profile, precision=precision)
        ),
    )
