"""What a TensorRT build will do, decided before TensorRT is touched: the build configuration, what the ONNX
file holds, the optimization profile, what the installed TensorRT can do, and the flags a build sets.

Capabilities are probed from the API (a member or attribute present or not), and the few rules that depend on
the release itself (DLA support) compare the *full* version (``10.3.0.30`` as ``(10, 3, 0, 30)``), never a
major.minor string. Everything here runs without a GPU; :mod:`.engine` does the build.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from cosep_deploy.deps import require
from cosep_deploy.errors import ConfigError, EngineBuildError, InternalError, unknown_name
from cosep_deploy.target_profile import TargetProfile

__all__ = [
    "BuildPlan",
    "OnnxSummary",
    "Shape",
    "ShapeRange",
    "TensorRTBuildConfig",
    "TrtCapabilities",
    "dla_refusal",
    "parse_version",
    "plan_build",
    "resolve_profile",
    "summarize_onnx",
    "trt_capabilities",
]

Shape = tuple[int, ...]
ShapeRange = tuple[Shape, Shape, Shape]  # min, opt, max
_PRECISIONS = ("fp32", "fp16", "int8")
_QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}
_PRECISION_FLAGS = {"FP16", "BF16", "INT8", "FP8", "INT4", "FP4"}


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
        if self.dla_core is not None and self.batch is not None and len(set(self.batch)) != 1:
            raise ConfigError(
                f"DLA runs static shapes only (min = opt = max), found batch {self.batch}: build one DLA engine per "
                "batch size, e.g. batch=(8, 8, 8)"
            )
        if self.hardware_compatibility and self.dla_core is not None:
            raise ConfigError("hardware_compatibility applies to Ampere+ dGPUs and cannot be combined with DLA")
        if self.strongly_typed not in ("auto", True, False):
            raise ConfigError(f"strongly_typed must be 'auto', True or False, found {self.strongly_typed!r}")

    @classmethod
    def for_target(
        cls, target: TargetProfile, *, precision: str | None = None, **overrides: Any
    ) -> TensorRTBuildConfig:
        """Defaults from a target profile: workspace, batch range, DLA core 0 when the profile uses DLA (with a
        static profile at the target's opt batch: DLA has no dynamic shapes)."""
        if target.backend != "tensorrt":
            raise ConfigError(f"target {target.name!r} uses {target.backend}, not TensorRT")
        prec = precision or target.default_precision
        if prec not in target.precisions:
            raise ConfigError(unknown_name(f"precision for target {target.name!r}", prec, target.precisions))
        batch = (target.batch.min, target.batch.opt, target.batch.max)
        if target.dla.use_dla:  # DLA is static: one engine at the profile's opt batch unless overridden
            batch = (target.batch.opt,) * 3
        fields: dict[str, Any] = {
            "precision": prec,
            "workspace_mib": target.workspace_mib,
            "batch": batch,
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
            if config.dla_core is not None and not lo == opt == hi:
                raise ConfigError(f"DLA runs static shapes only: shapes[{name!r}] needs min = opt = max: {ranges}")
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
    optimization_level: bool = True  # IBuilderConfig.builder_optimization_level (8.6+; absent in 8.5)

    @property
    def release(self) -> tuple[int, ...]:
        """The full version as integers: ``"10.3.0.30"`` -> ``(10, 3, 0, 30)``."""
        return parse_version(self.version)


def parse_version(version: str) -> tuple[int, ...]:
    """``"10.3.0.30"`` -> ``(10, 3, 0, 30)``; ``"11.4.1"`` -> ``(11, 4, 1)``. Compare tuples, never strings."""
    parts = re.findall(r"\d+", version.split("+")[0])
    if not parts:
        raise ConfigError(f"cannot read a TensorRT version from {version!r}")
    return tuple(int(x) for x in parts[:4])


def trt_capabilities() -> TrtCapabilities:
    """Probe the installed ``tensorrt`` (in tests, whatever module ``sys.modules["tensorrt"]`` holds)."""
    require("tensorrt", purpose="probing TensorRT's capabilities")
    import tensorrt as trt

    # Deliberately by name: the 10.13 stubs declare all of these, but 8.x lacks STRONGLY_TYPED, 11.x lacks
    # BuilderFlag.FP16 and the calibrators, 8.5 lacks HardwareCompatibilityLevel. ``__members__`` (typed in the
    # stubs, present on every release's enums) keeps even these probes checked for the enum's existence.
    # builder_optimization_level is a property of the IBuilderConfig class from 8.6 on (absent in 8.5).
    network_flags = trt.NetworkDefinitionCreationFlag.__members__
    strongly_typed = "STRONGLY_TYPED" in network_flags
    return TrtCapabilities(
        version=trt.__version__,
        strongly_typed=strongly_typed,
        weak_typing="FP16" in trt.BuilderFlag.__members__,
        calibrators=hasattr(trt, "IInt8EntropyCalibrator2"),
        explicit_batch_flag="EXPLICIT_BATCH" in network_flags and not strongly_typed,
        hardware_compatibility=hasattr(trt, "HardwareCompatibilityLevel"),
        optimization_level=hasattr(trt.IBuilderConfig, "builder_optimization_level"),
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
    if config.builder_optimization_level is not None and not caps.optimization_level:
        raise ConfigError(
            f"TensorRT {caps.version} has no builder_optimization_level (added in 8.6): leave it unset for this release"
        )
    typed = caps.strongly_typed if want == "auto" else bool(want)
    if config.dla_core is not None and (why := dla_refusal(caps, onnx)) is not None:
        raise ConfigError(why)
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
    if typed and set(builder) & _PRECISION_FLAGS:  # TensorRT refuses precision flags on strongly typed networks
        raise InternalError(f"strongly typed plan with precision flags {builder}")
    return BuildPlan(strongly_typed=typed, network_flags=tuple(network), builder_flags=tuple(builder))


def dla_refusal(caps: TrtCapabilities, onnx: OnnxSummary) -> str | None:
    """Why this TensorRT release cannot build this network for DLA, or None. By full release:

    - 8.x: DLA runs implicitly quantized int8 only; an explicitly quantized (Q/DQ) network cannot go to DLA.
    - after 10.7 and before 11.4: no DLA (JetPack 7.0/7.1 target Thor, which has none; 7.2's status is not
      documented); 11.4 (JetPack 7.2.2+) brings it back on AGX Orin. Boards without DLA cores (Thor, Orin Nano)
      are refused by the builder's ``num_DLA_cores`` at build time.
    """
    release = caps.release
    if release[0] == 8 and onnx.has_qdq:
        return (
            f"TensorRT {caps.version} cannot run an explicitly quantized (Q/DQ) int8 network on DLA: build the int8 "
            "engine for the GPU (no DLA core), use fp16 on DLA, or TensorRT 10.x (JetPack 6)"
        )
    if (10, 8) <= release[:2] < (11, 4):
        return (
            f"TensorRT {caps.version} has no DLA support (none after 10.7 until 11.4, which supports it on AGX Orin "
            "only): build for the GPU (no DLA core), or use JetPack 6 (TensorRT 10.3) for DLA"
        )
    return None
