"""A serialized-engine stand-in and its manifest, as the engine builders write them, for the tests that read,
cache, verify or time engines without building one (TensorRT cannot run here). One place for the manifest's
fields, so a new required field is added once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cosep_deploy.artifacts import sha256_file
from cosep_deploy.engines.manifest import EngineManifest, manifest_path_for

# an fp16 engine of TensorRT 10.3 built for, and on, a Jetson AGX Orin
ORIN_FP16: dict[str, Any] = {
    "onnx_file": "model.fp16.onnx",
    "onnx_sha256": "ab" * 32,
    "precision": "fp16",
    "target": "jetson-agx-orin",
    "backend": "tensorrt",
    "runtime": "TensorRT",
    "runtime_version": "10.3.0.30",
    "device_name": "Orin",
    "compute_capability": "8.7",
    "created": "2026-11-24T10:00:00+00:00",
}
# the same on a data-centre GPU of the dgpu-ampere-plus target
DGPU: dict[str, Any] = {
    **ORIN_FP16,
    "onnx_sha256": "0" * 64,
    "target": "dgpu-ampere-plus",
    "runtime_version": "10.13.0.35",
    "device_name": "Fake GPU",
    "compute_capability": "9.0",
}


def write_engine(engine: Path, payload: bytes, *, save: bool = True, **fields: Any) -> EngineManifest:
    """Write ``payload`` as the engine file ``engine`` and return its manifest (saved beside it unless ``save`` is
    False): the file's name, sha256 and size, then :data:`ORIN_FP16` with ``fields`` over it."""
    engine.parent.mkdir(parents=True, exist_ok=True)
    engine.write_bytes(payload)
    described = {"engine_file": engine.name, "engine_sha256": sha256_file(engine), "engine_bytes": len(payload)}
    manifest = EngineManifest(**{**ORIN_FP16, **described, **fields})
    if save:
        manifest.save(manifest_path_for(engine))
    return manifest
