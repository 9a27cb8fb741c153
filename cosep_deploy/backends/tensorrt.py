"""TensorRT engines from ONNX files, and a runner for them.

Two build paths, picked by what the installed TensorRT offers rather than by its version string:

- **strongly typed** (10.x, 11.x): the ``STRONGLY_TYPED`` network flag; every tensor keeps the type the ONNX
  gives it, so the precision was decided at export (a mixed-precision ONNX for fp16, Q/DQ nodes for int8).
  11.x has no other path.
- **flag based** (8.x): ``BuilderFlag.FP16`` / ``INT8`` let the builder pick precisions per layer. We ship
  no INT8 calibrators, so INT8 needs Q/DQ nodes in the ONNX here too (explicit quantization).

``tensorrt`` and the CUDA bindings are imported inside the functions that use them. The module object
is used untyped: the 10.13 type stubs are not PEP 561 compliant and do not parse under mypy.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..artifacts import atomic_write_bytes, sha256_file
from ..build.manifest import EngineManifest, check_manifest_against, manifest_path_for, utc_now, verify_engine_file
from ..deps import require
from ..errors import ConfigError, EngineBuildError, EngineLoadError, MissingDependencyError, unknown_name
from ..targets import TargetProfile
from .base import Runner, RunnerInfo, TimedRun
from .cuda_mem import CudaApi, CudaError, cuda_api, device_info

__all__ = [
    "BuildPlan",
    "OnnxSummary",
    "TensorRTBuildConfig",
    "TensorRTRunner",
    "TrtCapabilities",
    "engine_from_onnx",
    "plan_build",
    "resolve_profile",
    "summarize_onnx",
    "trt_capabilities",
]

Shape = tuple[int, ...]
ShapeRange = tuple[Shape, Shape, Shape]  # min, opt, max
Progress = Callable[[str], None]
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


def trt_capabilities(trt: Any) -> TrtCapabilities:
    ndcf = trt.NetworkDefinitionCreationFlag
    strongly_typed = hasattr(ndcf, "STRONGLY_TYPED")
    return TrtCapabilities(
        version=str(getattr(trt, "__version__", "unknown")),
        strongly_typed=strongly_typed,
        weak_typing=hasattr(trt.BuilderFlag, "FP16"),
        calibrators=hasattr(trt, "IInt8EntropyCalibrator2"),
        explicit_batch_flag=hasattr(ndcf, "EXPLICIT_BATCH") and not strongly_typed,
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


def _collecting_logger(trt: Any, progress: Progress | None) -> Any:
    """A TensorRT logger that keeps errors for our exception messages (and forwards info to progress)."""

    class CollectingLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            if severity in (trt.ILogger.INTERNAL_ERROR, trt.ILogger.ERROR):
                self.errors.append(msg)
            elif progress is not None and severity == trt.ILogger.WARNING:
                progress(f"TensorRT: {msg}")

    return CollectingLogger()


def _errors(logger: Any) -> str:
    return "; ".join(logger.errors[-5:]) or "no error message from TensorRT"


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
    trt = require("tensorrt", purpose="building TensorRT engines")
    plan = plan_build(trt_capabilities(trt), config, summary)
    say = progress or (lambda _msg: None)
    logger = _collecting_logger(trt, progress)
    try:  # no context managers around builder objects: that use warns in 11.x
        builder = trt.Builder(logger)
    except (TypeError, RuntimeError) as exc:  # "CUDA initialization failure with error: 35"
        raise EngineBuildError(f"TensorRT cannot create a builder (is a GPU and its driver present?): "
                               f"{_errors(logger)} ({exc})") from exc  # fmt: skip
    if config.dla_core is not None and config.dla_core >= builder.num_DLA_cores:
        raise EngineBuildError(
            f"DLA core {config.dla_core} requested but this device has {builder.num_DLA_cores} DLA core(s)"
        )
    flags = 0
    for name in plan.network_flags:
        flags |= 1 << int(getattr(trt.NetworkDefinitionCreationFlag, name))
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    say(f"parsing {onnx_file.name}")
    if not parser.parse_from_file(os.fspath(onnx_file)):  # from file: resolves external weight data
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineBuildError(f"TensorRT cannot parse {onnx_file}: " + "; ".join(errors or [_errors(logger)]))
    bconfig = builder.create_builder_config()
    for name in plan.builder_flags:
        bconfig.set_flag(getattr(trt.BuilderFlag, name))
    bconfig.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, config.workspace_mib << 20)
    if profile_shapes:
        profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in profile_shapes.items():
            profile.set_shape(name, lo, opt, hi)
        bconfig.add_optimization_profile(profile)
    if config.builder_optimization_level is not None:
        bconfig.builder_optimization_level = config.builder_optimization_level
    if config.profiling_verbosity_detailed:
        bconfig.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if config.hardware_compatibility:
        bconfig.hardware_compatibility_level = trt.HardwareCompatibilityLevel.AMPERE_PLUS
    if config.dla_core is not None:
        bconfig.default_device_type = trt.DeviceType.DLA
        bconfig.DLA_core = config.dla_core
    cache_file = config.timing_cache
    if cache_file is not None:
        # timings are per device and TensorRT version: a foreign cache is replaced, never used (ignore_mismatch)
        cache = bconfig.create_timing_cache(cache_file.read_bytes() if cache_file.is_file() else b"")
        if not bconfig.set_timing_cache(cache, False):
            say(f"timing cache {cache_file} is from another device or TensorRT version; starting a new one")
            bconfig.set_timing_cache(bconfig.create_timing_cache(b""), False)
    say(f"building {engine_file.name} ({config.precision}, {'strongly typed' if plan.strongly_typed else 'flags'})")
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, bconfig)
    seconds = time.perf_counter() - start
    if serialized is None:
        raise EngineBuildError(f"TensorRT failed to build an engine from {onnx_file}: {_errors(logger)}")
    atomic_write_bytes(engine_file, bytes(serialized))
    if cache_file is not None:
        atomic_write_bytes(cache_file, bytes(bconfig.get_timing_cache().serialize()))
    try:
        device = device_info(0)
        device_name, capability = device.name, device.compute_capability
    except (MissingDependencyError, CudaError):
        device_name, capability = "unknown", "unknown"
        say("could not read the GPU's name (install cuda-python); the manifest records 'unknown'")
    options = {**config.cache_options(), "strongly_typed_network": plan.strongly_typed,
               "network_flags": plan.network_flags, "builder_flags": plan.builder_flags}  # fmt: skip
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
        runtime_version=str(trt.__version__),
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


class TensorRTRunner(Runner):
    """Run a serialized engine with the name-based tensor API (``execute_async_v3``).

    Entering checks the engine file against its manifest (sha256, TensorRT release, GPU), deserializes it and
    creates a stream. ``time_once`` measures device time between CUDA events around the enqueue (or the CUDA
    graph launch): host-device copies are excluded, and :class:`TimedRun` says so.
    """

    def __init__(
        self,
        engine_path: str | os.PathLike[str],
        *,
        cuda_graph: bool = False,
        check_target: bool = True,
        device: int = 0,
        cuda: CudaApi | None = None,
    ) -> None:
        self.engine_path = Path(engine_path)
        self.cuda_graph, self.check_target, self.device = cuda_graph, check_target, device
        self._cuda_given = cuda
        self._manifest: EngineManifest | None = None
        self._reset()

    def _reset(self) -> None:
        # drop the context before the engine and the engine before its runtime
        self._context: Any = None
        self._engine: Any = None
        self._runtime: Any = None
        self._logger: Any = None
        self._trt: Any = None
        self._cuda: CudaApi | None = self._cuda_given
        self._stream: Any = None
        self._events: tuple[Any, ...] = ()
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (pointer, capacity in bytes)
        self._graph: Any = None
        self._graph_key: tuple[Any, ...] | None = None
        self._device_name = ""
        self._inputs: tuple[str, ...] = ()
        self._outputs: tuple[str, ...] = ()
        self._dtypes: dict[str, np.dtype[Any]] = {}

    def activate(self) -> None:
        try:
            self._load()
        except BaseException:
            self.deactivate()  # __exit__ does not run when __enter__ raises
            raise

    def _load(self) -> None:
        manifest_file = manifest_path_for(self.engine_path)
        if manifest_file.is_file():
            self._manifest = EngineManifest.load(manifest_file)
            verify_engine_file(self._manifest, self.engine_path)  # before TensorRT touches the bytes
        elif self.check_target:
            raise EngineLoadError(
                f"no manifest {manifest_file.name} beside {self.engine_path}: cannot tell where this engine can "
                "run; rebuild it with cosep-deploy, or pass check_target=False to load it anyway"
            )
        elif not self.engine_path.is_file():
            raise EngineLoadError(f"engine file {self.engine_path} not found")
        trt = self._trt = require("tensorrt", purpose="running TensorRT engines")
        cuda = self._cuda = self._cuda or cuda_api(self.device)
        dev = cuda.device(self.device)
        self._device_name = dev.name
        if self.check_target and self._manifest is not None:
            check_manifest_against(self._manifest, runtime_version=str(trt.__version__), device_name=dev.name,
                                   compute_capability=dev.compute_capability)  # fmt: skip
        if self.cuda_graph and not cuda.supports_graphs:
            raise ConfigError(f"CUDA graphs are not available through {cuda.name}; install cuda-python")
        self._logger = _collecting_logger(trt, None)
        self._runtime = trt.Runtime(self._logger)
        self._engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self._engine is None:
            raise EngineLoadError(f"TensorRT cannot deserialize {self.engine_path}: {_errors(self._logger)}")
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self._inputs = tuple(n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self._outputs = tuple(n for n in names if n not in self._inputs)
        self._dtypes = {n: np.dtype(trt.nptype(self._engine.get_tensor_dtype(n))) for n in names}
        self._stream = cuda.stream_create()
        self._events = (cuda.event_create(), cuda.event_create())

    def deactivate(self) -> None:
        cuda = self._cuda
        if cuda is not None:
            if self._graph is not None:
                cuda.graph_destroy(self._graph)
            for ptr, _ in self._buffers.values():
                cuda.free(ptr)
            for event in self._events:
                cuda.event_destroy(event)
            if self._stream is not None:
                cuda.stream_destroy(self._stream)
            if self._cuda_given is None:
                cuda.close()
        self._reset()

    def info(self) -> RunnerInfo:
        m = self._manifest
        return RunnerInfo(
            backend="tensorrt",
            runtime_version=str(self._trt.__version__) if self._trt else (m.runtime_version if m else "unknown"),
            device=self._device_name or (m.device_name if m else "unknown"),
            precision=m.precision if m else "unknown",
            settings={"cuda_graph": self.cuda_graph, "timer": "cuda-events", "includes_copies": False,
                      "cuda_api": self._cuda.name if self._cuda else "", "dla_core": m.dla_core if m else None},
            input_names=self._inputs,
            output_names=self._outputs,
        )  # fmt: skip

    def _require_active(self) -> tuple[CudaApi, Any]:
        if self._context is None or self._cuda is None:
            raise EngineLoadError("TensorRTRunner is not active: use it as a context manager (with ...:)")
        return self._cuda, self._context

    def _buffer(self, name: str, nbytes: int) -> int:
        cuda, _ = self._require_active()
        ptr, capacity = self._buffers.get(name, (0, -1))
        if nbytes > capacity:  # grow only; a smaller batch reuses the buffer
            if capacity >= 0:
                cuda.free(ptr)
            ptr, capacity = cuda.malloc(nbytes), nbytes
            self._buffers[name] = (ptr, capacity)
        return ptr

    def _prepare(self, feed: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
        """Set shapes and addresses, start the input copies; return empty host outputs and the inputs kept
        alive until the stream synchronizes."""
        cuda, context = self._require_active()
        if set(feed) != set(self._inputs):
            raise ConfigError(f"engine inputs are {list(self._inputs)}, the feed has {sorted(feed)}")
        kept = []
        for name in self._inputs:
            arr = np.ascontiguousarray(feed[name], dtype=self._dtypes[name])
            if not context.set_input_shape(name, arr.shape):
                lo, _, hi = self._engine.get_tensor_profile_shape(name, 0)
                raise ConfigError(f"input {name!r} shape {arr.shape} is outside the engine's profile "
                                  f"{tuple(lo)} .. {tuple(hi)}; rebuild with a wider batch range")  # fmt: skip
            ptr = self._buffer(name, arr.nbytes)
            context.set_tensor_address(name, ptr)
            cuda.copy_htod(ptr, arr, self._stream)
            kept.append(arr)
        outputs = {}
        for name in self._outputs:
            shape = tuple(context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise EngineLoadError(f"output {name!r} has a data-dependent shape {shape}: not supported here")
            outputs[name] = np.empty(shape, dtype=self._dtypes[name])
            context.set_tensor_address(name, self._buffer(name, outputs[name].nbytes))
        return outputs, kept

    def _execute(self) -> None:
        cuda, context = self._require_active()
        if not context.execute_async_v3(cuda.stream_handle(self._stream)):
            raise EngineLoadError(f"TensorRT could not run {self.engine_path.name}: {_errors(self._logger)}")

    def _ensure_graph(self) -> None:
        """Capture the enqueue into a CUDA graph unless one for these shapes and buffers exists."""
        cuda, context = self._require_active()
        key = tuple((n, tuple(context.get_tensor_shape(n)), self._buffers[n][0]) for n in self._inputs + self._outputs)
        if key == self._graph_key:
            return
        if self._graph is not None:  # new shapes or buffers: the old graph would use stale ones
            cuda.graph_destroy(self._graph)
            self._graph = self._graph_key = None
        # one plain enqueue first lets TensorRT finish its deferred per-shape setup outside the capture
        self._execute()
        cuda.stream_sync(self._stream)
        cuda.capture_begin(self._stream)
        ok = context.execute_async_v3(cuda.stream_handle(self._stream))
        graph = cuda.capture_end(self._stream)
        if not ok:
            cuda.graph_destroy(graph)
            raise EngineLoadError(f"TensorRT enqueue failed during CUDA graph capture: {_errors(self._logger)}")
        self._graph, self._graph_key = graph, key

    def _launch(self) -> None:
        if self.cuda_graph:
            cuda, _ = self._require_active()
            cuda.graph_launch(self._graph, self._stream)
        else:
            self._execute()

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        cuda, _ = self._require_active()
        outputs, _kept = self._prepare(feed)
        if self.cuda_graph:
            self._ensure_graph()
        self._launch()
        for name, host in outputs.items():
            cuda.copy_dtoh(host, self._buffers[name][0], self._stream)
        cuda.stream_sync(self._stream)
        return outputs

    def time_once(self, feed: Mapping[str, np.ndarray]) -> TimedRun:
        """Device time of one enqueue (CUDA events on the runner's stream); copies excluded."""
        cuda, _ = self._require_active()
        _outputs, _kept = self._prepare(feed)
        if self.cuda_graph:
            self._ensure_graph()  # capture outside the timed region
        cuda.stream_sync(self._stream)  # input copies finish before the start event
        start, end = self._events
        cuda.event_record(start, self._stream)
        self._launch()
        cuda.event_record(end, self._stream)
        return TimedRun(cuda.elapsed_ms(start, end) / 1e3, includes_copies=False)
