"""A prepared GPU check (``make gpu-check``): what this machine's NVIDIA GPU says about dense vs pruned, in one JSON.

On a machine with a GPU, within an 8-minute budget (sections that would not fit are recorded as skipped):

1. torch's CUDA backend: the demo model (ResNet-20 on 1x32x32 digits) and ResNet-50 (3x224x224), dense and
   CoSeP-pruned, at batch 1 and 8, eager PyTorch in fp32 timed with CUDA events around replayed CUDA graphs
   (:class:`~cosep_deploy.backends.torch.runner.TorchRunner`), dense and pruned interleaved, speed-up with a
   bootstrap interval;
2. when ``tensorrt`` is importable: fp16 engines built through the Python API
   (:func:`~cosep_deploy.backends.tensorrt.engine.engine_from_onnx`, a dynamic batch profile 1..8) and timed with
   :class:`~cosep_deploy.backends.tensorrt.runner.TensorRTRunner` (CUDA graphs when cuda-python is there);
3. when ``trtexec`` is found: the same ONNX files built and timed by trtexec
   (:func:`~cosep_deploy.bench.trtexec_bench.bench_trtexec`).

Models are randomly initialised (no weights are downloaded); pruning statistics come from digits (demo) and
seeded synthetic images (ResNet-50): enough for latency, which depends on the pruned widths only. On a machine
without a GPU it says so in one line and exits 0 without running anything.

    python bench/gpu_check.py [--out runs/gpu-check.json] [--budget-s 420]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_OUT = Path("runs/gpu-check.json")
BATCHES = (1, 8)


def gpu_name() -> str | None:
    """The first CUDA device's name, or None when torch sees no usable GPU."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    return str(torch.cuda.get_device_name(0))


class Budget:
    """Seconds left of the check's budget; a section that needs more than is left is skipped, not started."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


def summarize_report(report: Any) -> dict[str, Any]:
    """Per batch: dense and pruned median ms and the paired speed-up with its interval, from a BenchReport."""
    out = {}
    for b, s in report.speedups["pruned"].items():
        out[b] = {
            "dense_median_ms": report.engines["dense"]["results"][b]["median_ms"],
            "pruned_median_ms": report.engines["pruned"]["results"][b]["median_ms"],
            "speedup": s["speedup"],
            "ci_low": s["ci_low"],
            "ci_high": s["ci_high"],
        }
    return {"settings": report.settings, "batches": out}


def _models(budget: Budget) -> list[dict[str, Any]]:
    """The demo model and ResNet-50, each dense and CoSeP-pruned, with their MACs."""
    import torch

    from cosep_deploy.data import ClassBalancedSubset, load_dataset, make_loader
    from cosep_deploy.models import ModelSpec, build_model
    from cosep_deploy.prune import PruneConfig, prune

    plans = [
        ("resnet20", "digits:size=32", None, 10, 32, {}),
        (
            "resnet50",
            "synthetic:1000,size=32,channels=3,n=2000",
            3,
            1000,
            224,
            {"target_macs_ratio": 2.0, "pair_budget": 5000},
        ),
    ]
    out = []
    for name, data_spec, channels, classes, size, prune_opts in plans:
        if budget.left() < (300 if classes == 1000 else 60):  # ResNet-50's pruning, torch and builds need minutes
            break
        torch.manual_seed(0)
        data = load_dataset(data_spec)
        in_ch = channels or data.input_shape[0]
        spec = ModelSpec(name=name, num_classes=classes, in_channels=in_ch, image_size=size)
        model = build_model(spec, seed=0).eval()
        per_class = 2 if classes == 1000 else 16
        loader = make_loader(ClassBalancedSubset(data.train, per_class, seed=0), batch_size=64)
        config = PruneConfig(round_to=8, images_per_class=per_class, **prune_opts)  # 8: fp16 tensor-core width
        start = time.perf_counter()
        pruned, plan = prune(model, loader, example_inputs=torch.randn(2, in_ch, size, size), config=config)
        out.append(
            {
                "name": name,
                "dense": model,
                "pruned": pruned.eval(),
                "shape": [in_ch, size, size],
                "macs": {"dense": plan.cost_before["macs"], "pruned": plan.cost_after["macs"]},
                "prune_seconds": round(time.perf_counter() - start, 1),
                "build_need_s": 180 if classes == 1000 else 60,  # least budget left to start a TensorRT section
            }
        )
    return out


def _bench_config() -> Any:
    from cosep_deploy.bench import BenchConfig

    return BenchConfig(batch_sizes=BATCHES, iterations=100, warmup=20, min_seconds=2.0)


def torch_section(pair: dict[str, Any]) -> dict[str, Any]:
    from cosep_deploy.backends.torch.runner import TorchRunner
    from cosep_deploy.bench import bench_runners

    runners = {n: TorchRunner(pair[n], device="cuda", cuda_graphs=True, name=n) for n in ("dense", "pruned")}
    with runners["dense"], runners["pruned"]:
        report = bench_runners(runners, pair["shape"], _bench_config(), baseline="dense", macs=pair["macs"])
    return summarize_report(report)


def _fp16_onnx(pair: dict[str, Any], tmp: Path) -> dict[str, Path]:
    import torch

    from cosep_deploy.export import onnx_from_model
    from cosep_deploy.export.precision import PrecisionConfig, precision_variants_from_onnx

    files = {}
    for n in ("dense", "pruned"):
        src = tmp / f"{pair['name']}.{n}.onnx"
        onnx_from_model(pair[n], torch.randn(2, *pair["shape"]), src)
        precision_variants_from_onnx(src, tmp, PrecisionConfig(precisions=("fp16",)))
        files[n] = tmp / f"{src.stem}.fp16.onnx"
    return files


def tensorrt_python_section(pair: dict[str, Any], onnx_files: dict[str, Path], tmp: Path) -> dict[str, Any]:
    from cosep_deploy.backends.tensorrt.engine import engine_from_onnx
    from cosep_deploy.backends.tensorrt.plan import TensorRTBuildConfig
    from cosep_deploy.backends.tensorrt.runner import TensorRTRunner
    from cosep_deploy.bench import bench_runners
    from cosep_deploy.deps import is_available

    config = TensorRTBuildConfig(precision="fp16", batch=(1, max(BATCHES), max(BATCHES)))
    engines, builds = {}, {}
    for n, src in onnx_files.items():
        engines[n] = tmp / f"{pair['name']}.{n}.fp16.engine"
        manifest = engine_from_onnx(src, engines[n], config)
        builds[n] = {"build_seconds": manifest.build_seconds, "device": manifest.device_name}
    graphs = is_available("cuda.bindings.runtime") or is_available("cuda.cudart")
    runners = {n: TensorRTRunner(engines[n], cuda_graph=graphs) for n in engines}
    with runners["dense"], runners["pruned"]:
        report = bench_runners(runners, pair["shape"], _bench_config(), baseline="dense", macs=pair["macs"])
    return {"builds": builds, **summarize_report(report)}


def trtexec_section(pair: dict[str, Any], onnx_files: dict[str, Path], tmp: Path, exe: Path) -> dict[str, Any]:
    from cosep_deploy.artifacts import sha256_file
    from cosep_deploy.backends.trtexec.command import TrtexecConfig, run_trtexec, trtexec_command, trtexec_version
    from cosep_deploy.bench.trtexec_bench import bench_trtexec
    from cosep_deploy.engines.manifest import EngineManifest, manifest_path_for, utc_now

    version = trtexec_version(exe)
    engines, builds = {}, {}
    for n, src in onnx_files.items():
        engine = tmp / f"{pair['name']}.{n}.trtexec.engine"
        shape = {"input": (1, *pair["shape"])}
        top = {"input": (max(BATCHES), *pair["shape"])}
        tconf = TrtexecConfig(
            onnx=src,
            save_engine=engine,
            precision="fp16",
            min_shapes=shape,
            opt_shapes=top,
            max_shapes=top,
            shapes=top,
            iterations=10,
        )
        start = time.perf_counter()
        result = run_trtexec(trtexec_command(tconf, version=version, executable=exe), timeout_s=300)
        builds[n] = {"build_seconds": round(time.perf_counter() - start, 1), "device": result.summary.device_name}
        EngineManifest(
            engine_file=engine.name,
            engine_sha256=sha256_file(engine),
            engine_bytes=engine.stat().st_size,
            onnx_file=src.name,
            onnx_sha256=sha256_file(src),
            precision="fp16",
            target="",
            backend="trtexec",
            runtime="TensorRT",
            runtime_version=".".join(map(str, version)),
            device_name=result.summary.device_name or "unknown",
            compute_capability=result.summary.compute_capability or "unknown",
            created=utc_now(),
        ).save(manifest_path_for(engine))
        engines[n] = engine
    report = bench_trtexec(
        engines, "input", pair["shape"], _bench_config(), baseline="dense", macs=pair["macs"], executable=exe
    )
    return {"builds": builds, **summarize_report(report)}


def _section(budget: Budget, need_s: float, run: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run one section unless the budget cannot hold it; an error is recorded, not raised."""
    if budget.left() < need_s:
        return {"skipped": f"less than {need_s:.0f} s of the budget left"}
    start = time.perf_counter()
    try:
        result = run(*args)
    except Exception as exc:  # one failing section must not lose the others' results
        return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=5)}
    return {**result, "seconds": round(time.perf_counter() - start, 1)}


def _model_entry(pair: dict[str, Any], budget: Budget, has_trt: bool, exe: Path | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"input": pair["shape"], "macs": pair["macs"], "prune_seconds": pair["prune_seconds"]}
    entry["torch_cuda"] = _section(budget, 30, torch_section, pair)
    if not (has_trt or exe):
        return entry
    with tempfile.TemporaryDirectory(prefix="gpu-check.") as name:
        tmp = Path(name)
        try:
            files = _fp16_onnx(pair, tmp)
        except Exception as exc:  # recorded in the JSON like a failing section
            entry["fp16_onnx"] = {"error": f"{type(exc).__name__}: {exc}"}
            return entry
        if has_trt:
            entry["tensorrt_python"] = _section(budget, pair["build_need_s"], tensorrt_python_section, pair, files, tmp)
        if exe:
            entry["trtexec"] = _section(budget, pair["build_need_s"], trtexec_section, pair, files, tmp, exe)
    return entry


def run_check(out: Path, budget_s: float) -> int:
    from cosep_deploy.artifacts import atomic_write_text
    from cosep_deploy.backends.trtexec.command import find_trtexec
    from cosep_deploy.bench.environment import describe_environment
    from cosep_deploy.deps import is_available

    budget = Budget(budget_s)
    has_trt, exe = is_available("tensorrt"), find_trtexec()
    result: dict[str, Any] = {
        "check": "gpu-check",
        "environment": describe_environment(),
        "tensorrt_python": has_trt,
        "trtexec": str(exe) if exe else None,
        "models": {},
    }
    for pair in _models(budget):
        result["models"][pair["name"]] = _model_entry(pair, budget, has_trt, exe)
        print(f"gpu-check: {pair['name']} done ({budget.left():.0f} s of the budget left)", flush=True)
    atomic_write_text(out, json.dumps(result, indent=2, default=str) + "\n")
    failed = [
        f"{m}/{k}" for m, e in result["models"].items() for k, v in e.items() if isinstance(v, dict) and "error" in v
    ]
    print(f"gpu-check: wrote {out}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed or not result["models"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    # sections start only with enough budget left for them, so the whole check stays under 8 minutes
    parser.add_argument("--budget-s", type=float, default=420.0, help="seconds within which sections may start")
    args = parser.parse_args(argv)
    name = gpu_name()
    if name is None:
        print("gpu-check: no NVIDIA GPU visible (torch.cuda.is_available() is False); nothing was run")
        return 0
    print(f"gpu-check: running on {name}", flush=True)
    return run_check(args.out, args.budget_s)


if __name__ == "__main__":
    sys.exit(main())
