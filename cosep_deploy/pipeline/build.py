"""The build stage: one engine per exported model and precision, for a target device profile.

- ``cpu`` targets: ONNX Runtime engines, built here.
- ``jetson`` targets on a machine that is not a Jetson: engines cannot be built off the board, so a
  self-contained deploy bundle holding both models (ONNX variants, profile, ``bundle.json``, the on-board
  package and its script) is written instead.
- ``jetson`` targets on the board itself: after checking the board is the target's device, the TensorRT
  engines are built directly, the L4T release and power state (``nvpmodel -q``, ``jetson_clocks --show``) go
  into ``build.json``, and dense vs pruned is benchmarked per precision (``bench.<precision>.json``).
- ``dgpu`` targets: TensorRT engines built with this machine's GPU.

TensorRT builds go through the engine cache (:func:`~cosep_deploy.engines.manifest.engine_cache_for`): a
repeated build of the same ONNX bytes with the same TensorRT, GPU and options copies the cached engine.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cosep_deploy.artifacts import read_json, staged_dir, write_json
from cosep_deploy.errors import ArtifactError, ConfigError
from cosep_deploy.pipeline.layout import RunLayout
from cosep_deploy.progress import Progress, resolve_progress
from cosep_deploy.rundir import writes_run

if TYPE_CHECKING:
    from cosep_deploy.bench.harness import BenchConfig
    from cosep_deploy.board.jetson import JetsonInfo
    from cosep_deploy.engines.manifest import EngineCache
    from cosep_deploy.target_profile import TargetProfile

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
        raise ArtifactError(
            f"missing {found['fp32']}: run `cosep-deploy export --run {shlex.quote(str(layout.root))}` first"
        )
    return found


@writes_run()
def build_stage(
    run: str | os.PathLike[str],
    *,
    target: str = "cpu-onnxruntime",
    precisions: tuple[str, ...] | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    allow_other_device: bool = False,
    bench: BenchConfig | None = None,
) -> dict[str, Any]:
    """Build every model x precision for ``target`` into ``engines/<target>/``; returns what was made.

    ``precisions`` defaults to every exported precision the target supports. TensorRT engines come from the
    engine cache at ``cache_dir`` (default ``$COSEP_DEPLOY_CACHE`` or ``~/.cache/cosep-deploy/engines``) when
    it holds them; ``use_cache=False`` always builds. On a Jetson board, a board that is not the target's
    device is refused unless ``allow_other_device``; ``bench`` sets the on-board benchmark (default
    :class:`~cosep_deploy.bench.harness.BenchConfig`).
    """
    from cosep_deploy.board.jetson import detect_jetson
    from cosep_deploy.engines.manifest import engine_cache_for
    from cosep_deploy.targets import get_target

    profile = get_target(target)
    board = detect_jetson() if profile.kind == "jetson" else None
    builds_tensorrt = profile.backend == "tensorrt" and (profile.kind != "jetson" or board is not None)
    if builds_tensorrt:  # a missing TensorRT is said first, not a complaint about its cache folder
        from cosep_deploy.deps import require

        require("tensorrt", purpose=f"building {profile.name} engines")
    cache = engine_cache_for(cache_dir, enabled=use_cache) if builds_tensorrt else None
    layout = RunLayout(Path(run))
    variants = _wanted_variants(layout, profile, precisions)
    from cosep_deploy.pipeline.chain import engine_sources

    prog = resolve_progress(progress)
    start = time.perf_counter()
    made: dict[str, Any] = {"target": profile.name, "kind": profile.kind, "sources": engine_sources(layout)}
    if board is not None:
        from cosep_deploy.board.jetson import check_board_matches

        check_board_matches(profile, board, allow_other_device=allow_other_device, progress=prog.log)
        _check_on_board_dependencies()  # before minutes of building, not after
    with staged_dir(layout.engines(profile.name), overwrite=True) as tmp:
        if profile.kind == "cpu":
            made["engines"] = _build_onnxruntime(variants, tmp, profile.name, threads, prog)
        elif profile.kind == "jetson" and board is None:
            made["bundles"] = _write_bundles(variants, tmp, profile, prog)
        else:
            made["engines"], made["cache"] = _build_tensorrt(variants, tmp, profile, cache, prog)
            made["engine_cache"] = str(cache.root) if cache is not None else None
            if board is not None:
                made.update(_record_and_bench_on_board(layout, variants, tmp, board, bench, prog))
        made["seconds"] = round(time.perf_counter() - start, 3)
        write_json(tmp / "build.json", made)
    return made


def _wanted_variants(
    layout: RunLayout, profile: TargetProfile, precisions: tuple[str, ...] | None
) -> dict[str, dict[str, Path]]:
    """The exported ONNX files to build, per model and precision: ``precisions`` (each one the target runs and
    export wrote), else every exported precision the target runs."""
    variants = {m: onnx_variants(layout, m) for m in MODELS}
    unsupported = [p for p in precisions or () if p not in profile.precisions]
    if unsupported:
        raise ConfigError(
            f"target {profile.name} runs {', '.join(profile.precisions)}, not {', '.join(unsupported)}; "
            "choose from those with --precisions"
        )
    wanted = precisions or tuple(p for p in ("fp32", "fp16", "int8") if p in profile.precisions)
    for model, files in variants.items():
        missing = [p for p in wanted if p not in files]
        if missing and precisions:
            raise ArtifactError(
                f"{model}: no {', '.join(missing)} ONNX in {layout.onnx}; export it with "
                f"`cosep-deploy export --run {shlex.quote(str(layout.root))} --precisions {','.join(precisions)}`"
            )
        variants[model] = {p: f for p, f in files.items() if p in wanted}
    return variants


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
    from cosep_deploy.backends.onnxruntime.build import ort_engine_from_onnx

    return _build_each(
        variants,
        f"building ONNX Runtime engines for {target}",
        prog,
        lambda src, name, precision: ort_engine_from_onnx(
            src, out / f"{name}.onnx", threads=threads, target=target, precision=precision
        ),
    )


def _write_bundles(variants: dict[str, dict[str, Path]], out: Path, profile: Any, prog: Progress) -> dict[str, str]:
    from cosep_deploy.board.bundle import jetson_bundle_from_onnx

    # one bundle holding dense and pruned: the board builds both and times them interleaved
    with prog.task(f"writing the {profile.name} deploy bundle (engines are built on the board)", total=1) as task:
        path = jetson_bundle_from_onnx(variants, profile, out / "bundle")
        task.advance()
    return dict.fromkeys(variants, path.name)


def _build_tensorrt(
    variants: dict[str, dict[str, Path]], out: Path, profile: TargetProfile, cache: EngineCache | None, prog: Progress
) -> tuple[dict[str, Any], dict[str, Any]]:
    """TensorRT engines through the engine cache; returns the manifests and, per engine, the cache's part."""
    from cosep_deploy.backends.tensorrt.cache import cached_engine_from_onnx
    from cosep_deploy.backends.tensorrt.plan import TensorRTBuildConfig

    cache_use: dict[str, Any] = {}

    def build_one(src: Path, name: str, precision: str) -> Any:
        from cosep_deploy.onnx_compat import require_compatible

        require_compatible(src, profile.tensorrt_releases)  # the parser's verdict before minutes of building
        config = TensorRTBuildConfig.for_target(profile, precision=precision)
        built = cached_engine_from_onnx(src, out / f"{name}.engine", config, cache=cache, progress=prog.log)
        cache_use[name] = built.record()
        return built.manifest

    engines = _build_each(variants, f"building TensorRT engines for {profile.name}", prog, build_one)
    return engines, cache_use


def _check_on_board_dependencies() -> None:
    """TensorRT's Python API and CUDA bindings, checked before building (the benchmark needs both)."""
    from cosep_deploy.backends.tensorrt.cuda import cuda_api
    from cosep_deploy.deps import require

    require("tensorrt", purpose="building engines on the Jetson board")
    cuda_api(0).close()


def _record_and_bench_on_board(
    layout: RunLayout,
    variants: dict[str, dict[str, Path]],
    out: Path,
    board: JetsonInfo,
    bench: BenchConfig | None,
    prog: Progress,
) -> dict[str, Any]:
    """On the board: its L4T release and power state, then dense vs pruned per precision with the TensorRT
    runner, one ``bench.<precision>.json`` per precision beside the engines. GPU only: tested on a board."""
    from cosep_deploy.backends.tensorrt.plan import summarize_onnx
    from cosep_deploy.backends.tensorrt.runner import TensorRTRunner
    from cosep_deploy.bench.harness import bench_runners
    from cosep_deploy.board.jetson import power_state

    power = power_state()
    for tool, why in power.reasons.items():
        prog.log(f"{tool}: not recorded ({why})")
    shape, macs = _bench_shape_and_macs(layout, variants["dense"]["fp32"], summarize_onnx)
    reports: dict[str, str] = {}
    for precision in [p for p in variants["dense"] if p in variants["pruned"]]:
        suffix = "" if precision == "fp32" else f".{precision}"
        runners = {m: TensorRTRunner(out / f"{m}{suffix}.engine") for m in MODELS}
        with runners["dense"], runners["pruned"]:
            report = bench_runners(runners, shape, bench, baseline="dense", macs=macs, progress=prog)
        reports[precision] = report.save(out / f"bench.{precision}.json").name
    return {"board": {**board.to_json(), "power": power.to_json()}, "bench": reports}


def _bench_shape_and_macs(
    layout: RunLayout, dense_onnx: Path, summarize: Callable[[Path], Any]
) -> tuple[list[int], dict[str, int] | None]:
    """One image's shape and the MACs per model, from the pruning plan; the shape from the ONNX without one."""
    for plan_dir in (layout.finetuned, layout.pruned):
        if (plan_dir / "plan.json").is_file():
            plan = read_json(plan_dir / "plan.json", what="pruning plan")
            macs = {"dense": int(plan["cost_before"]["macs"]), "pruned": int(plan["cost_after"]["macs"])}
            return [int(d) for d in plan["input_shape"]], macs
    dims = next(iter(summarize(dense_onnx).inputs.values()))
    return [int(d) for d in dims[1:]], None
