"""ONNX Runtime "engines": the graph optimised offline by ONNX Runtime for this runtime version.

ONNX Runtime applies its graph optimisations (constant folding, Conv+BN fusion, redundant-node
elimination...) when a session is created; we run them once at build time at the *extended* level, whose
output is portable across CPUs (the *all* level adds layout changes tied to the machine), and save the
result with a manifest recording the ONNX Runtime version it was made with.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from cosep_deploy.artifacts import atomic_write_bytes, sha256_file
from cosep_deploy.engines.manifest import EngineManifest, manifest_path_for, utc_now
from cosep_deploy.errors import EngineBuildError

__all__ = ["ORT_BUILD_LEVEL", "ort_engine_from_onnx"]

ORT_BUILD_LEVEL = "extended"


def ort_engine_from_onnx(
    onnx_path: str | os.PathLike[str],
    engine_path: str | os.PathLike[str],
    *,
    threads: int | None = None,
    target: str = "cpu-onnxruntime",
    precision: str = "fp32",
) -> EngineManifest:
    """Optimise ``onnx_path`` with ONNX Runtime and write it to ``engine_path`` plus its manifest."""
    import onnxruntime as ort

    from cosep_deploy.backends.onnxruntime.runner import ort_session_options

    src, dst = Path(onnx_path), Path(engine_path)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        optimised = Path(tmp) / "optimised.onnx"
        opts = ort_session_options(threads or 1, graph_optimization=ORT_BUILD_LEVEL)
        opts.optimized_model_filepath = str(optimised)
        try:
            ort.InferenceSession(str(src), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT's own exception types
            raise EngineBuildError(f"ONNX Runtime cannot build {src}: {str(exc).strip().splitlines()[0]}") from exc
        atomic_write_bytes(dst, optimised.read_bytes())
    manifest = EngineManifest(
        engine_file=dst.name,
        engine_sha256=sha256_file(dst),
        engine_bytes=dst.stat().st_size,
        onnx_file=src.name,
        onnx_sha256=sha256_file(src),
        precision=precision,
        target=target,
        backend="onnxruntime",
        runtime="ONNX Runtime",
        runtime_version=str(ort.__version__),
        device_name="cpu",
        compute_capability="",
        build_options={"graph_optimization": ORT_BUILD_LEVEL, "provider": "CPUExecutionProvider"},
        build_seconds=round(time.perf_counter() - start, 3),
        created=utc_now(),
    )
    manifest.save(manifest_path_for(dst))
    return manifest
