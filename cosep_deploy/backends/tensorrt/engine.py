"""Build a TensorRT engine from an ONNX file on this machine's GPU: :func:`engine_from_onnx`.

The plan (which flags, which profile) is decided in :mod:`.plan` before TensorRT is touched; here it is
carried out through the builder API, and the engine is written with a manifest that records the device's
full identity (:mod:`.identity`). ``tensorrt`` is imported inside the functions, after :func:`require`; mypy
checks the calls against the ``tensorrt-stubs`` 10.13 stubs, and the few members that differ between releases
are looked up by name in :func:`_flag_member` (and probed in :func:`~.plan.trt_capabilities`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cosep_deploy.artifacts import atomic_write_bytes, sha256_file
from cosep_deploy.backends.tensorrt.cuda import CudaError, device_info
from cosep_deploy.backends.tensorrt.identity import device_identity
from cosep_deploy.backends.tensorrt.plan import (
    BuildPlan,
    ShapeRange,
    TensorRTBuildConfig,
    TrtCapabilities,
    plan_build,
    resolve_profile,
    summarize_onnx,
    trt_capabilities,
)
from cosep_deploy.backends.tensorrt.runner import Progress, collecting_logger, logged_errors
from cosep_deploy.deps import require
from cosep_deploy.engines.manifest import EngineManifest, manifest_path_for, utc_now
from cosep_deploy.errors import ConfigError, EngineBuildError, MissingDependencyError

if TYPE_CHECKING:
    import tensorrt as trt

__all__ = ["engine_from_onnx"]

_Flag = TypeVar("_Flag", "trt.BuilderFlag", "trt.NetworkDefinitionCreationFlag")


def _flag_member(enum: type[_Flag], name: str) -> _Flag:
    """``enum.<name>``, looked up by name because the plan names members that exist only on some releases
    (FP16/INT8 are gone in 11.x; EXPLICIT_BATCH matters on 8.x only and is deprecated from 10.0):
    :func:`plan_build` only names what :func:`trt_capabilities` found, and a test checks every name it can
    produce against the stubs. Typed through the stubs' ``__members__``, so the result is a real enum member."""
    try:
        return enum.__members__[name]
    except KeyError:
        raise EngineBuildError(f"this TensorRT has no {enum.__name__}.{name}") from None


def _network_from_onnx(
    builder: trt.Builder, plan: BuildPlan, onnx_file: Path, logger: trt.ILogger, errors: list[str]
) -> tuple[trt.INetworkDefinition, trt.OnnxParser]:
    """Parse the ONNX file into a network with the plan's creation flags. The parser is returned too: the
    network refers to weights the parser owns, so it must live until the build is done."""
    import tensorrt as trt

    flags = 0
    for name in plan.network_flags:
        flags |= 1 << int(_flag_member(trt.NetworkDefinitionCreationFlag, name))
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(os.fspath(onnx_file)):  # from file: resolves external weight data
        parse_errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineBuildError(
            f"TensorRT cannot parse {onnx_file}: " + "; ".join(parse_errors or [logged_errors(errors)])
        )
    return network, parser


def _builder_config(
    builder: trt.Builder, plan: BuildPlan, config: TensorRTBuildConfig, profile_shapes: Mapping[str, ShapeRange]
) -> trt.IBuilderConfig:
    """Flags, workspace, optimization profile, and the optional settings of ``config`` (timing cache aside)."""
    import tensorrt as trt

    bconfig = builder.create_builder_config()
    for name in plan.builder_flags:
        bconfig.set_flag(_flag_member(trt.BuilderFlag, name))
    bconfig.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, config.workspace_mib << 20)
    if profile_shapes:
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in profile_shapes.items():
            profile.set_shape(name, trt.Dims(list(lo)), trt.Dims(list(opt)), trt.Dims(list(hi)))
        bconfig.add_optimization_profile(profile)
    if config.builder_optimization_level is not None:  # plan_build checked this release has it (8.6+)
        bconfig.builder_optimization_level = config.builder_optimization_level
    if config.profiling_verbosity_detailed:
        bconfig.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if config.hardware_compatibility:  # plan_build checked this TensorRT has it (8.6+)
        bconfig.hardware_compatibility_level = trt.HardwareCompatibilityLevel.AMPERE_PLUS
    if config.dla_core is not None:
        bconfig.default_device_type = trt.DeviceType.DLA
        bconfig.DLA_core = config.dla_core
    return bconfig


def _load_timing_cache(bconfig: trt.IBuilderConfig, cache_file: Path, say: Progress) -> None:
    # timings are per device and TensorRT version: a foreign cache is replaced, never used (ignore_mismatch)
    cache = bconfig.create_timing_cache(cache_file.read_bytes() if cache_file.is_file() else b"")
    if not bconfig.set_timing_cache(cache, False):
        say(f"timing cache {cache_file} is from another device or TensorRT version; starting a new one")
        bconfig.set_timing_cache(bconfig.create_timing_cache(b""), False)


def engine_from_onnx(
    onnx_path: str | os.PathLike[str],
    engine_path: str | os.PathLike[str],
    config: TensorRTBuildConfig,
    *,
    progress: Progress | None = None,
) -> EngineManifest:
    """Build a TensorRT engine from an ONNX file on this machine's GPU; write it and its manifest."""
    onnx_file, engine_file = Path(onnx_path), Path(engine_path)
    if not onnx_file.is_file():
        raise ConfigError(f"ONNX file {onnx_file} not found")
    summary = summarize_onnx(onnx_file)
    profile_shapes = resolve_profile(config, summary.inputs)
    require("tensorrt", purpose="building TensorRT engines")
    caps = trt_capabilities()
    plan = plan_build(caps, config, summary)
    say: Progress = progress or (lambda _msg: None)
    logger, errors = collecting_logger(progress)
    builder = _new_builder(logger, errors, config.dla_core)
    say(f"parsing {onnx_file.name}")
    network, _parser = _network_from_onnx(builder, plan, onnx_file, logger, errors)
    bconfig = _builder_config(builder, plan, config, profile_shapes)
    cache_file = config.timing_cache
    if cache_file is not None:
        _load_timing_cache(bconfig, cache_file, say)
    say(f"building {engine_file.name} ({config.precision}, {'strongly typed' if plan.strongly_typed else 'flags'})")
    start = time.perf_counter()
    # the stubs say IHostMemory, but TensorRT returns None when the build fails
    serialized: trt.IHostMemory | None = builder.build_serialized_network(network, bconfig)
    seconds = time.perf_counter() - start
    if serialized is None:
        raise EngineBuildError(f"TensorRT failed to build an engine from {onnx_file}: {logged_errors(errors)}")
    atomic_write_bytes(engine_file, bytes(serialized))
    if cache_file is not None:
        atomic_write_bytes(cache_file, bytes(bconfig.get_timing_cache().serialize()))
    manifest = _engine_manifest(engine_file, onnx_file, config, plan, _identity_fields(caps, say), seconds)
    manifest.save(manifest_path_for(engine_file))
    say(f"built {engine_file} in {seconds:.1f} s")
    return manifest


def _new_builder(logger: trt.ILogger, errors: list[str], dla_core: int | None) -> trt.Builder:
    """A builder on this machine's GPU, with the DLA core asked for, if any."""
    import tensorrt as trt

    try:  # no context managers around builder objects: that use warns in 11.x
        builder = trt.Builder(logger)
    except (TypeError, RuntimeError) as exc:  # "CUDA initialization failure with error: 35"
        raise EngineBuildError(
            f"TensorRT cannot create a builder (is a GPU and its driver present?): {logged_errors(errors)} ({exc})"
        ) from exc
    if dla_core is not None and dla_core >= builder.num_DLA_cores:
        raise EngineBuildError(f"DLA core {dla_core} requested but this device has {builder.num_DLA_cores} DLA core(s)")
    return builder


def _engine_manifest(
    engine_file: Path,
    onnx_file: Path,
    config: TensorRTBuildConfig,
    plan: BuildPlan,
    identity: dict[str, Any],
    seconds: float,
) -> EngineManifest:
    """The manifest of a freshly written engine: its files, how it was built, and on which device."""
    import tensorrt as trt

    options = {
        **config.cache_options(),
        "strongly_typed_network": plan.strongly_typed,
        "network_flags": plan.network_flags,
        "builder_flags": plan.builder_flags,
    }
    options = json.loads(json.dumps(options))  # as the manifest file will hold them: tuples become lists
    return EngineManifest(
        engine_file=engine_file.name,
        engine_sha256=sha256_file(engine_file),
        engine_bytes=engine_file.stat().st_size,
        onnx_file=onnx_file.name,
        onnx_sha256=sha256_file(onnx_file),
        precision=config.precision,
        target=config.target,
        backend="tensorrt",
        runtime="TensorRT",
        runtime_version=trt.__version__,
        dla_core=config.dla_core,
        **identity,
        build_options=options,
        build_seconds=round(seconds, 3),
        created=utc_now(),
    )


def _identity_fields(caps: TrtCapabilities, say: Progress) -> dict[str, Any]:
    """The manifest's device fields: the first CUDA binding that answers (cuda-python, PyCUDA, torch) gives the
    GPU's name, capability, SMs and memory; "unknown" only when none of them can reach the GPU."""
    try:
        device = device_info(0)
    except (MissingDependencyError, CudaError) as exc:
        say(f"could not identify the GPU through any CUDA binding ({exc}); the manifest records 'unknown'")
        return {"device_name": "unknown", "compute_capability": "unknown", "tensorrt_package_version": caps.version}
    return device_identity(device, caps.version).manifest_fields()
