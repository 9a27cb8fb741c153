"""TensorRT builds behind the engine cache: :func:`cached_engine_from_onnx`, keyed by :func:`tensorrt_cache_key`
(the ONNX's bytes, the full TensorRT version, the device's full identity and the build options)."""

from __future__ import annotations

import os
from pathlib import Path

from cosep_deploy.artifacts import sha256_file
from cosep_deploy.backends.tensorrt.cuda import CudaError, DeviceInfo, device_info
from cosep_deploy.backends.tensorrt.engine import engine_from_onnx
from cosep_deploy.backends.tensorrt.identity import DeviceIdentity, device_identity
from cosep_deploy.backends.tensorrt.plan import TensorRTBuildConfig
from cosep_deploy.backends.tensorrt.runner import Progress
from cosep_deploy.deps import require
from cosep_deploy.engines.manifest import CachedBuild, EngineCache, EngineManifest, build_with_cache, engine_cache_key
from cosep_deploy.errors import ConfigError, MissingDependencyError

__all__ = ["cached_engine_from_onnx", "tensorrt_cache_key"]


def tensorrt_cache_key(
    onnx_sha256: str, trt_version: str, device: DeviceIdentity | DeviceInfo, config: TensorRTBuildConfig
) -> str:
    """The engine cache key of a TensorRT (Python API) build: the ONNX's bytes, the full TensorRT version, the
    device's identity (name, compute capability, SM count, memory, board model, power mode, TensorRT package;
    a bare :class:`DeviceInfo` has no board part) and :meth:`TensorRTBuildConfig.cache_options` (not the timing
    cache's path or the target's label, which do not change the engine)."""
    if isinstance(device, DeviceInfo):
        cc, sms, mem = device.compute_capability, device.sm_count, device.memory_bytes
        device = DeviceIdentity(device.name, cc, sms, mem, "", "", "")
    options = {"builder": "tensorrt-python", **config.cache_options()}
    return engine_cache_key(onnx_sha256, trt_version, device.cache_label(), options)


def cached_engine_from_onnx(
    onnx_path: str | os.PathLike[str],
    engine_path: str | os.PathLike[str],
    config: TensorRTBuildConfig,
    *,
    cache: EngineCache | None,
    device: DeviceInfo | None = None,
    progress: Progress | None = None,
) -> CachedBuild:
    """:func:`engine_from_onnx` through ``cache``: an engine built before from the same ONNX bytes, TensorRT
    version, GPU and options is copied (and its manifest written) instead of rebuilt; a new one is stored.

    ``device`` defaults to CUDA device 0; the key also holds the board's model and power mode on a Jetson and
    the TensorRT package version (:func:`device_identity`). If the GPU cannot be identified (no CUDA binding
    answers), the cache is skipped rather than risk handing out an engine of another GPU. ``cache=None`` always
    builds.
    """
    onnx_file, engine_file = Path(onnx_path), Path(engine_path)
    say: Progress = progress or (lambda _msg: None)

    def build(out: Path) -> EngineManifest:
        return engine_from_onnx(onnx_file, out, config, progress=progress)

    if cache is None:
        return CachedBuild(build(engine_file), hit=False, key=None)
    if not onnx_file.is_file():
        raise ConfigError(f"ONNX file {onnx_file} not found")
    require("tensorrt", purpose="building TensorRT engines")
    import tensorrt as trt

    if device is None:
        try:
            device = device_info(0)
        except (MissingDependencyError, CudaError) as exc:
            say(f"cannot identify the GPU ({exc}); building {engine_file.name} without the engine cache")
            return CachedBuild(build(engine_file), hit=False, key=None)
    identity = device_identity(device, trt.__version__)
    key = tensorrt_cache_key(sha256_file(onnx_file), trt.__version__, identity, config)
    labels = {"onnx_file": onnx_file.name, "target": config.target}
    return build_with_cache(build, engine_file, cache=cache, key=key, labels=labels, progress=say)
