"""Taking per-layer profiles of a dense and a pruned engine: ONNX Runtime's profiler run here, or trtexec
``--exportProfile`` files brought back from a GPU or a board; both end in :func:`compare_layer_profiles`."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from cosep_deploy.artifacts import sha256_file
from cosep_deploy.bench.layer_profile import LayerProfile
from cosep_deploy.bench.layers import LayersReport, compare_layer_profiles
from cosep_deploy.errors import BenchError, ConfigError, EngineLoadError
from cosep_deploy.progress import Progress, resolve_progress

__all__ = ["compare_trtexec_profiles", "profile_onnxruntime"]

_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64"}


def _profiling_session(path: Path, prefix: Path, threads: int) -> Any:
    import onnxruntime as ort

    from cosep_deploy.backends.onnxruntime.runner import ort_session_options

    if not path.is_file():
        raise EngineLoadError(f"ONNX file not found: {path}")
    opts = ort_session_options(threads)  # the benchmark's settings: intra-op threads, sequential, all opts
    opts.enable_profiling = True
    opts.profile_file_prefix = str(prefix)
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types for corrupt or invalid models
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EngineLoadError(f"ONNX Runtime cannot load {path}: {first}") from exc


def _feed(session: Any, path: Path, batch: int, seed: int) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    feed = {}
    for inp in session.get_inputs():
        if inp.type not in _DTYPES:
            raise BenchError(f"{path}: input {inp.name!r} has type {inp.type}; profiling feeds float inputs only")
        shape = [batch if k == 0 and not isinstance(d, int) else d for k, d in enumerate(inp.shape)]
        if not all(isinstance(d, int) for d in shape):
            raise BenchError(f"{path}: input {inp.name!r} has dynamic dimensions other than the batch: {inp.shape}")
        feed[inp.name] = rng.standard_normal(shape).astype(_DTYPES[inp.type])
    return feed


def profile_onnxruntime(
    dense_onnx: str | os.PathLike[str],
    pruned_onnx: str | os.PathLike[str],
    *,
    batch: int = 1,
    iterations: int = 50,
    threads: int | None = None,
    warmup: int = 5,
    progress: Progress | None = None,
) -> LayersReport:
    """Profile both models with ONNX Runtime's profiler under the benchmark's session settings (CPU, ``threads``
    intra-op threads, sequential execution, all graph optimisations) and compare them per layer.

    Runs alternate between the two sessions (ABBA), so drift hits both alike; the first ``warmup`` runs of each
    are left out. The profiler's own overhead is in every kernel time, dense and pruned alike.
    """
    import onnxruntime as ort

    if batch < 1 or iterations < 1 or warmup < 0:
        raise ConfigError(f"need batch >= 1, iterations >= 1, warm-up >= 0; got {batch}, {iterations}, {warmup}")
    n_threads = threads or min(os.cpu_count() or 1, 2)
    paths = {"dense": Path(dense_onnx), "pruned": Path(pruned_onnx)}
    names = list(paths)
    prog = resolve_progress(progress)
    sessions: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="cosep-ort-profile-") as tmp:
        try:
            for n in names:
                sessions[n] = _profiling_session(paths[n], Path(tmp) / n, n_threads)
            feeds = {n: _feed(sessions[n], paths[n], batch, seed=0) for n in names}
            with prog.task("profiling layers: dense vs pruned", total=warmup + iterations) as task:
                for i in range(warmup + iterations):
                    for n in names if i % 2 == 0 else names[::-1]:
                        sessions[n].run(None, feeds[n])
                    task.advance()
            traces = {n: sessions[n].end_profiling() for n in names}
            profiles = {n: LayerProfile.from_onnxruntime_trace(traces[n], skip_runs=warmup) for n in names}
        finally:
            sessions.clear()  # a session freed while still profiling writes its trace: into tmp, not elsewhere
    settings = {
        "backend": "onnxruntime",
        "runtime_version": str(ort.__version__),
        "provider": "CPUExecutionProvider",
        "batch": batch,
        "iterations": iterations,
        "warmup": warmup,
        "threads": n_threads,
        "execution_mode": "sequential",
        "graph_optimization": "all",
        "order": "alternating (ABBA)",
        "dense_file": paths["dense"].name,
        "pruned_file": paths["pruned"].name,
    }
    inputs = {f"{n}_sha256": sha256_file(paths[n]) for n in names}
    return compare_layer_profiles(profiles["dense"], profiles["pruned"], settings=settings, inputs=inputs)


def compare_trtexec_profiles(
    dense_profile: str | os.PathLike[str],
    pruned_profile: str | os.PathLike[str],
    *,
    dense_layer_info: str | os.PathLike[str] | None = None,
    pruned_layer_info: str | os.PathLike[str] | None = None,
) -> LayersReport:
    """Compare two trtexec ``--exportProfile`` files per layer (e.g. from a Jetson bundle's results), with their
    ``--exportLayerInfo`` files where given, for layer types."""
    if (dense_layer_info is None) != (pruned_layer_info is None):
        raise ConfigError("give layer info files for both engines or for neither")
    dense = LayerProfile.from_trtexec(dense_profile, dense_layer_info)
    pruned = LayerProfile.from_trtexec(pruned_profile, pruned_layer_info)
    files = {"dense": Path(dense_profile), "pruned": Path(pruned_profile)}
    settings = {
        "backend": "trtexec",
        "dense_file": files["dense"].name,
        "pruned_file": files["pruned"].name,
        "layer_info": dense_layer_info is not None,
        "iterations": dense.iterations or None,
    }
    inputs = {f"{n}_sha256": sha256_file(p) for n, p in files.items()}
    return compare_layer_profiles(dense, pruned, settings=settings, inputs=inputs)
