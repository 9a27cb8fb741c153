"""TensorRT engines from ONNX files (the runner is in :mod:`.tensorrt_runner`, re-exported here).

Two build paths, picked by what the installed TensorRT offers rather than by its version string:

- **strongly typed** (10.x, 11.x): the ``STRONGLY_TYPED`` network flag; every tensor keeps the type the ONNX
  gives it, so the precision was decided at export (a mixed-precision ONNX for fp16, Q/DQ nodes for int8).
  11.x has no other path.
- **flag based** (8.x): ``BuilderFlag.FP16`` / ``INT8`` let the builder pick precisions per layer. We ship
  no INT8 calibrators, so INT8 needs Q/DQ nodes in the ONNX here too (explicit quantization).

:func:`cached_engine_from_onnx` puts :func:`engine_from_onnx` behind the engine cache of
:mod:`cosep_deploy.engines.manifest`, keyed by :func:`tensorrt_cache_key`.

``tensorrt`` is imported inside the functions that use them, after :func:`require`. mypy checks that use
against the ``tensorrt-stubs`` 10.13 stubs (see ``tools/trt_typings.py``); the few names that differ between
8.x, 10.x and 11.x are looked up by name in :func:`trt_capabilities` and :func:`_flag_member` only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from cosep_deploy.artifacts import atomic_write_bytes, sha256_file
from cosep_deploy.backends.tensorrt.cuda import CudaError, DeviceInfo, device_info
from cosep_deploy.backends.tensorrt.runner import Progress, TensorRTRunner, collecting_logger, logged_errors
from cosep_deploy.deps import require
from cosep_deploy.engines.manifest import (
    CachedBuild,
    EngineCache,
    EngineManifest,
    build_with_cache,
    engine_cache_key,
    manifest_path_for,
    utc_now,
)
from cosep_deploy.errors import ConfigError, EngineBuildError, MissingDependencyError, unknown_name
from cosep_deploy.targets import TargetProfile

if TYPE_CHECKING:
    import tensorrt as trt

__all__ = [
    "BuildPlan",
    "OnnxSummary",
    "TensorRTBuildConfig",
    "TensorRTRunner",
    "TrtCapabilities",
    "cached_engine_from_onnx",
    "engine_from_onnx",
    "plan_build",
    "resolve_profile",
    "summarize_onnx",
    "tensorrt_cache_key",
    "trt_capabilities",
]

Shape = tuple[int, ...]
ShapeRange = tuple[Shape, Shape, Shape]  # min, opt, max
_PRECISIONS = ("fp32", "fp16", "int8")
_QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}


@dataclasses.dataclass(frozen=True, kw_only=True)
class TensorRTBuildConfig:
    """How to build one engine. ``None`` means TensorRT's default.

    Shapes: either ``shapes`` (min/opt/max per input name) or ``batch`` (min, opt, max) applied to the
    first dimension of every input whose other dimensions the ONNX fixes.
    """

    precision: str = "fp16"  # strongly typed path: informational, checked against the ONNX contents
    workspace_mib: int = 1024
    batch: tuple[int, int, int] | None = None
    shapes: Mapping[str, ShapeRange] | None = None
    timing_cache: Path | None = None
    builder_optimization_level: int | None = None  # 0-5; TensorRT's default is 3
    dla_core: int | None = None
    gpu_fallback: bool = True
    profiling_verbosity_detailed: bool = True  # needed for per-layer info (trtexec --exportLayerInfo)
    hardware_compatibility: bool = False  # Ampere+ dGPUs only, never DLA
    strongly_typed: Literal["auto"] | bool = "auto"
    target: str = ""

    def __post_init__(self) -> None:
        if self.precision not in _PRECISIONS:
            raise ConfigError(unknown_name("precision", self.precision, _PRECISIONS))
        if self.workspace_mib <= 0:
            raise ConfigError(f"workspace_mib must be positive, found {self.workspace_mib}")
        if self.builder_optimization_level is not None and not 0 <= self.builder_optimization_level <= 5:
            raise ConfigError(f"builder_optimization_level must be 0-5, found {self.builder_optimization_level}")
        if self.batch is not None and not (
            len(self.batch) == 3 and 1 <= self.batch[0] <= self.batch[1] <= self.batch[2]
        ):
            raise ConfigError(f"batch must be (min, opt, max) with 1 <= min <= opt <= max, found {self.batch}")
        if self.dla_core is not None and (self.dla_core < 0 or self.precision == "fp32"):
            raise ConfigError("DLA needs fp16 or int8 tensors and a core index >= 0; use precision fp16/int8")
        if self.hardware_compatibility and self.dla_core is not None:
            raise ConfigError("hardware_compatibility applies to Ampere+ dGPUs and cannot be combined with DLA")
        if self.strongly_typed not in ("auto", True, False):
            raise ConfigError(f"strongly_typed must be 'auto', True or False, found {self.strongly_typed!r}")

    @classmethod
    def for_target(
        cls, target: TargetProfile, *, precision: str | None = None, **overrides: Any
    ) -> TensorRTBuildConfig:
        """Defaults from a target profile: workspace, batch range, DLA core 0 when the profile uses DLA."""
        if target.backend != "tensorrt":
            raise ConfigError(f"target {target.name!r} uses {target.backend}, not TensorRT")
        prec = precision or target.default_precision
        if prec not in target.precisions:
            raise ConfigError(unknown_name(f"precision for target {target.name!r}", prec, target.precisions))
        fields: dict[str, Any] = {
            "precision": prec,
            "workspace_mib": target.workspace_mib,
            "batch": (target.batch.min, target.batch.opt, target.batch.max),
            "dla_core": 0 if target.dla.use_dla else None,
            "gpu_fallback": target.dla.gpu_fallback,
            "target": target.name,
        }
        return cls(**{**fields, **overrides})

    def cache_options(self) -> dict[str, Any]:
        """What changes the engine's content (for :func:`engine_cache_key`): not file paths or labels."""
        opts = dataclasses.asdict(self)
        del opts["timing_cache"], opts["target"]
        return opts


@dataclasses.dataclass(frozen=True)
class OnnxSummary:
    """What the builder needs to know about an ONNX file before TensorRT sees it."""

    inputs: dict[str, tuple[int | str, ...]]  # dims; symbolic or unknown dims are strings
    has_qdq: bool  # explicit quantization present (Q/DQ nodes)
    has_fp16: bool  # any float16 tensor or Cast to float16 (a mixed-precision export)


def summarize_onnx(path: str | os.PathLike[str]) -> OnnxSummary:
    onnx = require("onnx", purpose="reading ONNX inputs")
    try:
        model = onnx.load(os.fspath(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError/OSError variants
        raise EngineBuildError(f"cannot read ONNX file {path}: {exc}") from exc
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    inputs: dict[str, tuple[int | str, ...]] = {}
    for value in graph.input:
        if value.name in initializers:  # old exporters list weights as inputs too
            continue
        dims = value.type.tensor_type.shape.dim
        inputs[value.name] = tuple(d.dim_value if d.dim_value > 0 else (d.dim_param or "?") for d in dims)
    fp16 = onnx.TensorProto.FLOAT16
    nodes = list(graph.node)
    has_fp16 = (
        any(i.data_type == fp16 for i in graph.initializer)
        or any(n.op_type == "Cast" and any(a.name == "to" and a.i == fp16 for a in n.attribute) for n in nodes)
        or any(v.type.tensor_type.elem_type == fp16 for v in [*graph.input, *graph.output, *graph.value_info])
    )
    return OnnxSummary(inputs=inputs, has_qdq=any(n.op_type in _QDQ_OPS for n in nodes), has_fp16=has_fp16)


def resolve_profile(config: TensorRTBuildConfig, inputs: Mapping[str, tuple[int | str, ...]]) -> dict[str, ShapeRange]:
    """min/opt/max shapes for every input with a dynamic dimension ({} for a fully static ONNX)."""
    if config.shapes is not None:
        for name in config.shapes:
            if name not in inputs:
                raise ConfigError(unknown_name("ONNX input in shapes", name, inputs))
    out: dict[str, ShapeRange] = {}
    for name, dims in inputs.items():
        dynamic = [i for i, d in enumerate(dims) if not isinstance(d, int)]
        if config.shapes is not None and name in config.shapes:
            ranges = tuple(tuple(int(x) for x in s) for s in config.shapes[name])
            if len(ranges) != 3 or any(len(s) != len(dims) for s in ranges):
                raise ConfigError(f"shapes[{name!r}] must be three shapes of rank {len(dims)} (ONNX: {dims})")
            lo, opt, hi = ranges
            for i, d in enumerate(dims):
                if isinstance(d, int) and not lo[i] == opt[i] == hi[i] == d:
                    raise ConfigError(f"shapes[{name!r}] dim {i} must be {d} (fixed in the ONNX), found {ranges}")
                if not 1 <= lo[i] <= opt[i] <= hi[i]:
                    raise ConfigError(f"shapes[{name!r}] dim {i} must satisfy 1 <= min <= opt <= max: {ranges}")
            if dynamic:
                out[name] = (lo, opt, hi)
            continue
        if not dynamic:
            continue
        if dynamic != [0] or config.batch is None:
            raise ConfigError(
                f"ONNX input {name!r} has dynamic dims {[dims[i] for i in dynamic]} (shape {dims}); pass "
                "batch=(min, opt, max) for a dynamic batch dimension, or explicit shapes per input"
            )
        rest = tuple(int(d) for d in dims[1:])
        lo_b, opt_b, hi_b = config.batch
        out[name] = ((lo_b, *rest), (opt_b, *rest), (hi_b, *rest))
    return out


@dataclasses.dataclass(frozen=True)
class TrtCapabilities:
    """What the installed TensorRT can do, probed from its API (works on a fake namespace in tests)."""

    version: str
    strongly_typed: bool  # NetworkDefinitionCreationFlag.STRONGLY_TYPED (10.x, 11.x)
    weak_typing: bool  # BuilderFlag.FP16 exists (gone in 11.x)
    calibrators: bool  # implicit INT8 calibration (unused: we require Q/DQ ONNX files)
    explicit_batch_flag: bool  # 8.x must ask for explicit batch; 10.x+ is always explicit
    hardware_compatibility: bool


def trt_capabilities() -> TrtCapabilities:
    """Probe the installed ``tensorrt`` (in tests, whatever module ``sys.modules["tensorrt"]`` holds)."""
    require("tensorrt", purpose="probing TensorRT's capabilities")
    import tensorrt as trt

    # Deliberately by name: the 10.13 stubs declare all of these, but 8.x lacks STRONGLY_TYPED, 11.x lacks
    # BuilderFlag.FP16 and the calibrators, 8.5 lacks HardwareCompatibilityLevel. ``__members__`` (typed in the
    # stubs, present on every release's enums) keeps even these probes checked for the enum's existence.
    network_flags = trt.NetworkDefinitionCreationFlag.__members__
    strongly_typed = "STRONGLY_TYPED" in network_flags
    return TrtCapabilities(
        version=trt.__version__,
        strongly_typed=strongly_typed,
        weak_typing="FP16" in trt.BuilderFlag.__members__,
        calibrators=hasattr(trt, "IInt8EntropyCalibrator2"),
        explicit_batch_flag="EXPLICIT_BATCH" in network_flags and not strongly_typed,
        hardware_compatibility=hasattr(trt, "HardwareCompatibilityLevel"),
    )


@dataclasses.dataclass(frozen=True)
class BuildPlan:
    """The flags a build will set, by name (``NetworkDefinitionCreationFlag`` / ``BuilderFlag`` members)."""

    strongly_typed: bool
    network_flags: tuple[str, ...]
    builder_flags: tuple[str, ...]


def plan_build(caps: TrtCapabilities, config: TensorRTBuildConfig, onnx: OnnxSummary) -> BuildPlan:
    """Pick the build path and check the ONNX carries the requested precision."""
    want = config.strongly_typed
    if want is True and not caps.strongly_typed:
        raise ConfigError(f"TensorRT {caps.version} has no strongly typed networks (10.0+); use strongly_typed=False")
    if want is False and not caps.weak_typing:
        raise ConfigError(
            f"TensorRT {caps.version} removed weak typing (precision flags): the precision must come from the "
            "ONNX file; use strongly_typed='auto'"
        )
    if config.hardware_compatibility and not caps.hardware_compatibility:
        raise ConfigError(f"TensorRT {caps.version} cannot build hardware-compatible engines (8.6+ on Ampere+)")
    typed = caps.strongly_typed if want == "auto" else bool(want)
    if config.precision == "int8" and not onnx.has_qdq:
        raise EngineBuildError(
            "precision int8 needs an ONNX with explicit QuantizeLinear/DequantizeLinear nodes, and this one has "
            "none (cosep-deploy ships no INT8 calibrators); export the int8 variant with post-training "
            "quantization (cosep-deploy export --precision int8) and build from that file"
        )
    if typed and config.precision == "fp16" and not onnx.has_fp16:
        raise EngineBuildError(
            "precision fp16 on a strongly typed network needs a mixed-precision ONNX (float16 tensors), and this "
            "one is all fp32; export the fp16 variant (cosep-deploy export --precision fp16) and build from it"
        )
    network = ["STRONGLY_TYPED"] if typed else []
    if caps.explicit_batch_flag:
        network.append("EXPLICIT_BATCH")
    builder: list[str] = []
    if not typed:
        builder += {"fp32": [], "fp16": ["FP16"], "int8": ["INT8", "FP16"]}[config.precision]
    if config.dla_core is not None and config.gpu_fallback:
        builder.append("GPU_FALLBACK")
    return BuildPlan(strongly_typed=typed, network_flags=tuple(network), builder_flags=tuple(builder))


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
    if config.builder_optimization_level is not None:
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
    import tensorrt as trt

    plan = plan_build(trt_capabilities(), config, summary)
    say: Progress = progress or (lambda _msg: None)
    logger, errors = collecting_logger(progress)
    try:  # no context managers around builder objects: that use warns in 11.x
        builder = trt.Builder(logger)
    except (TypeError, RuntimeError) as exc:  # "CUDA initialization failure with error: 35"
        raise EngineBuildError(
            f"TensorRT cannot create a builder (is a GPU and its driver present?): {logged_errors(errors)} ({exc})"
        ) from exc
    if config.dla_core is not None and config.dla_core >= builder.num_DLA_cores:
        raise EngineBuildError(
            f"DLA core {config.dla_core} requested but this device has {builder.num_DLA_cores} DLA core(s)"
        )
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
    try:
        device = device_info(0)
        device_name, capability = device.name, device.compute_capability
    except (MissingDependencyError, CudaError):
        device_name, capability = "unknown", "unknown"
        say("could not read the GPU's name (install cuda-python); the manifest records 'unknown'")
    options = {
        **config.cache_options(),
        "strongly_typed_network": plan.strongly_typed,
        "network_flags": plan.network_flags,
        "builder_flags": plan.builder_flags,
    }
    options = json.loads(json.dumps(options))  # as the manifest file will hold them: tuples become lists
    manifest = EngineManifest(
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
        device_name=device_name,
        compute_capability=capability,
        dla_core=config.dla_core,
        build_options=options,
        build_seconds=round(seconds, 3),
        created=utc_now(),
    )
    manifest.save(manifest_path_for(engine_file))
    say(f"built {engine_file} in {seconds:.1f} s")
    return manifest


def tensorrt_cache_key(onnx_sha256: str, trt_version: str, device: DeviceInfo, config: TensorRTBuildConfig) -> str:
    """The engine cache key of a TensorRT (Python API) build: the ONNX's bytes, the full TensorRT version, the
    GPU's name and compute capability, and :meth:`TensorRTBuildConfig.cache_options` (not the timing cache's
    path or the target's label, which do not change the engine)."""
    options = {"builder": "tensorrt-python", **config.cache_options()}
    return engine_cache_key(onnx_sha256, trt_version, f"{device.name} (sm {device.compute_capability})", options)


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

    ``device`` defaults to CUDA device 0. If the GPU cannot be identified (no CUDA bindings), the cache is
    skipped rather than risk handing out an engine of another GPU. ``cache=None`` always builds.
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
    key = tensorrt_cache_key(sha256_file(onnx_file), trt.__version__, device, config)
    labels = {"onnx_file": onnx_file.name, "target": config.target}
    return build_with_cache(build, engine_file, cache=cache, key=key, labels=labels, progress=say)
