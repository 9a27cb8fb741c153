"""trtexec, TensorRT's reference benchmark: explicit command lines per version, and running them.

trtexec's defaults changed in 11.x (CUDA graphs and spin-wait on, host-device copies off, no precision flags),
so a command that relies on defaults measures different things on 10.x and 11.x. :func:`trtexec_command`
always spells the measurement settings out for the version at hand. The parsers of trtexec's outputs live in
:mod:`.trtexec_parse` and are re-exported here.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from cosep_deploy.artifacts import atomic_write_text
from cosep_deploy.backends.trtexec.parse import (
    LayerComparison,
    LayerDesc,
    LayerInfo,
    LayerTime,
    TrtexecSummary,
    TrtexecTimes,
    TrtexecVersion,
    compare_layer_profiles,
    format_number,
    parse_export_profile,
    parse_export_times,
    parse_layer_info,
    parse_trtexec_summary,
    parse_trtexec_version,
    summarize_ms,
)
from cosep_deploy.deps import INSTALL_HINTS
from cosep_deploy.errors import ConfigError, EngineBuildError, MissingDependencyError, unknown_name
from cosep_deploy.verbosity import debug_enabled, get_logger

__all__ = [  # the parsers are re-exported from .trtexec_parse
    "LayerComparison",
    "LayerDesc",
    "LayerInfo",
    "LayerTime",
    "TrtexecConfig",
    "TrtexecResult",
    "TrtexecSummary",
    "TrtexecTimes",
    "TrtexecVersion",
    "compare_layer_profiles",
    "find_trtexec",
    "format_shape",
    "parse_export_profile",
    "parse_export_times",
    "parse_layer_info",
    "parse_trtexec_summary",
    "parse_trtexec_version",
    "run_trtexec",
    "summarize_ms",
    "trtexec_command",
    "trtexec_version",
]

Shape = tuple[int, ...]
JETPACK_TRTEXEC = Path("/usr/src/tensorrt/bin/trtexec")
_PRECISION_FLAGS = {"fp32": (), "fp16": ("--fp16",), "int8": ("--int8", "--fp16")}
log = get_logger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrtexecConfig:
    """One trtexec invocation: build (``onnx`` + ``save_engine``), benchmark (``load_engine``) or both.

    ``None`` omits the flag (trtexec's default); measurement settings (CUDA graph, copies, spin-wait) are
    always explicit. Shapes map input names to dims; ``min/opt/max_shapes`` define the build profile,
    ``shapes`` the benchmark shape.
    """

    onnx: Path | None = None
    save_engine: Path | None = None
    load_engine: Path | None = None
    precision: str = "fp32"  # only turned into flags on the weakly typed path (8.x, or strongly_typed=False)
    strongly_typed: Literal["auto"] | bool = "auto"
    min_shapes: Mapping[str, Shape] | None = None
    opt_shapes: Mapping[str, Shape] | None = None
    max_shapes: Mapping[str, Shape] | None = None
    shapes: Mapping[str, Shape] | None = None
    workspace_mib: int | None = None
    timing_cache: Path | None = None
    builder_optimization_level: int | None = None
    dla_core: int | None = None
    gpu_fallback: bool = True
    iterations: int | None = None
    duration_s: float | None = None
    warmup_ms: float | None = None
    avg_runs: int | None = None
    percentiles: tuple[float, ...] | None = None
    cuda_graph: bool = True
    data_transfers: bool = False
    spin_wait: bool = True
    separate_profile_run: bool = True  # keep the profiler out of the timed run
    skip_inference: bool = False
    export_times: Path | None = None
    export_profile: Path | None = None
    export_layer_info: Path | None = None
    profiling_verbosity_detailed: bool = True
    verbose: bool | None = None  # trtexec --verbose; None: with -vv (the cosep_deploy logger at DEBUG)
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.precision not in _PRECISION_FLAGS:
            raise ConfigError(unknown_name("precision", self.precision, _PRECISION_FLAGS))
        if (self.onnx is None) == (self.load_engine is None):
            raise ConfigError("trtexec needs exactly one of onnx (build) or load_engine (benchmark)")
        if self.builder_optimization_level is not None and not 0 <= self.builder_optimization_level <= 5:
            raise ConfigError(f"builder_optimization_level must be 0-5, found {self.builder_optimization_level}")
        if self.dla_core is not None and self.precision == "fp32" and self.strongly_typed is False:
            raise ConfigError("DLA needs fp16 or int8: pick precision fp16/int8")


def format_shape(shapes: Mapping[str, Shape]) -> str:
    """``{"input": (1, 3, 224, 224)}`` -> ``input:1x3x224x224`` (names with ':' or ',' are quoted)."""
    parts = []
    for name, dims in shapes.items():
        quoted = f"'{name}'" if any(c in name for c in ":,") else name
        parts.append(f"{quoted}:{'x'.join(str(int(d)) for d in dims)}")
    return ",".join(parts)


def trtexec_command(
    config: TrtexecConfig, *, version: TrtexecVersion | tuple[int, int, int], executable: str | Path = "trtexec"
) -> list[str]:
    """The argument list for ``config`` on trtexec ``version``, with every measurement setting explicit."""
    v = TrtexecVersion(*version)
    cmd = [os.fspath(executable)]
    if config.onnx is not None:
        cmd.append(f"--onnx={config.onnx}")
    if config.load_engine is not None:
        cmd.append(f"--loadEngine={config.load_engine}")
    if config.save_engine is not None:
        cmd.append(f"--saveEngine={config.save_engine}")
    building = config.onnx is not None
    if building:
        cmd += _typing_flags(config, v)
        for flag, shapes in (
            ("--minShapes", config.min_shapes),
            ("--optShapes", config.opt_shapes),
            ("--maxShapes", config.max_shapes),
        ):
            if shapes:
                cmd.append(f"{flag}={format_shape(shapes)}")
        if config.workspace_mib is not None:
            # no unit suffix: 8.x takes plain MiB only, 10.x+ also reads a bare number as MiB
            cmd.append(f"--memPoolSize=workspace:{int(config.workspace_mib)}")
        if config.timing_cache is not None:
            cmd.append(f"--timingCacheFile={config.timing_cache}")
        if config.builder_optimization_level is not None:
            if v < (8, 6, 0):
                raise ConfigError(f"trtexec {v} has no --builderOptimizationLevel (added in 8.6)")
            cmd.append(f"--builderOptimizationLevel={config.builder_optimization_level}")
        if config.profiling_verbosity_detailed or config.export_layer_info is not None:
            cmd.append("--profilingVerbosity=detailed")
    if config.dla_core is not None:
        cmd.append(f"--useDLACore={config.dla_core}")
        if config.gpu_fallback:
            cmd.append("--allowGPUFallback")
    if config.shapes:
        cmd.append(f"--shapes={format_shape(config.shapes)}")
    if config.skip_inference and v >= (8, 6, 0):
        cmd.append("--skipInference")
    elif config.skip_inference:
        # --skipInference came with 8.6: on 8.5 the least inference trtexec will run after a build
        cmd += ["--iterations=1", "--duration=0", "--warmUp=0", "--avgRuns=1"]
    else:
        cmd += _measurement_flags(config, v)
    for flag, path in (
        ("--exportTimes", config.export_times),
        ("--exportProfile", config.export_profile),
        ("--exportLayerInfo", config.export_layer_info),
    ):
        if path is not None:
            cmd.append(f"{flag}={path}")
    if config.export_profile is not None and config.separate_profile_run and v.major < 11:
        cmd.append("--separateProfileRun")  # deprecated in 11.x, where profiling never shares the timed run
    if config.verbose or (config.verbose is None and debug_enabled()):
        cmd.append("--verbose")  # every release has it
    cmd += config.extra_args
    return cmd


def _typing_flags(config: TrtexecConfig, v: TrtexecVersion) -> list[str]:
    """Precision flags: none on 11.x (weak typing is gone), --stronglyTyped on 10.x, --fp16/--int8 on 8.x."""
    if v.major >= 11:
        if config.strongly_typed is False:
            raise ConfigError(f"trtexec {v} has no weak typing: the precision must come from the ONNX file")
        return []
    typed = v.major >= 10 if config.strongly_typed == "auto" else bool(config.strongly_typed)
    if typed and v.major < 10:
        raise ConfigError(f"trtexec {v} has no --stronglyTyped (10.0+); use strongly_typed=False")
    return ["--stronglyTyped"] if typed else list(_PRECISION_FLAGS[config.precision])


def _measurement_flags(config: TrtexecConfig, v: TrtexecVersion) -> list[str]:
    cmd = []
    if v.major >= 11:
        # 11.x defaults: CUDA graphs on, spin-wait on, no host-device copies
        if not (config.cuda_graph and config.spin_wait):
            raise ConfigError(
                f"trtexec {v} uses CUDA graphs and spin-wait by default; turning them off is not "
                "supported here (pass the flag through extra_args)"
            )
        if config.data_transfers:
            cmd.append("--includeDataTransfers")
    else:
        # 10.x and older default to the opposite; these flags make them measure what 11.x measures
        cmd += ["--useCudaGraph"] if config.cuda_graph else []
        cmd += [] if config.data_transfers else ["--noDataTransfers"]
        cmd += ["--useSpinWait"] if config.spin_wait else []
    for flag, value in (
        ("--iterations", config.iterations),
        ("--duration", config.duration_s),
        ("--warmUp", config.warmup_ms),
        ("--avgRuns", config.avg_runs),
    ):
        if value is not None:
            cmd.append(f"{flag}={format_number(value)}")
    if config.percentiles:
        if v < (8, 6, 0) and len(config.percentiles) > 1:
            raise ConfigError(f"trtexec {v} takes a single --percentile value (lists need 8.6+)")
        cmd.append("--percentile=" + ",".join(format_number(p) for p in config.percentiles))
    return cmd


def find_trtexec() -> Path | None:
    """trtexec on PATH, else where JetPack and NVIDIA's packages put it."""
    found = shutil.which("trtexec")
    if found:
        return Path(found)
    return JETPACK_TRTEXEC if os.access(JETPACK_TRTEXEC, os.X_OK) else None


def _require_trtexec(executable: str | Path | None) -> Path:
    path = Path(executable) if executable is not None else find_trtexec()
    if path is None:
        raise MissingDependencyError(
            "trtexec not found on PATH or at /usr/src/tensorrt/bin/trtexec; it ships with JetPack and NVIDIA's "
            f"TensorRT tar/deb packages, not with pip ({INSTALL_HINTS['tensorrt']})"
        )
    return path


def trtexec_version(executable: str | Path | None = None) -> TrtexecVersion:
    """Run ``trtexec --help`` and read the version from its banner."""
    path = _require_trtexec(executable)
    proc = subprocess.run([os.fspath(path), "--help"], capture_output=True, text=True, timeout=60, check=False)
    return parse_trtexec_version(proc.stdout + proc.stderr)


@dataclasses.dataclass(frozen=True)
class TrtexecResult:
    command: list[str]
    returncode: int
    output: str
    summary: TrtexecSummary


def run_trtexec(
    args: Sequence[str | os.PathLike[str]],
    *,
    log_path: Path | None = None,
    timeout_s: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrtexecResult:
    """Run a command from :func:`trtexec_command`; on failure raise :class:`EngineBuildError` with the tail
    of trtexec's output. The full output goes to ``log_path`` if given."""
    cmd = [os.fspath(a) for a in args]
    if not cmd:
        raise ConfigError("empty trtexec command")
    if progress is not None:
        progress("running " + " ".join(cmd))
    log.info("running %s", " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except FileNotFoundError as exc:
        raise MissingDependencyError(f"cannot run {cmd[0]}: {exc.strerror}") from exc
    except subprocess.TimeoutExpired as exc:
        raise EngineBuildError(f"trtexec did not finish within {timeout_s} s: {' '.join(cmd)}") from exc
    output = proc.stdout + proc.stderr
    log.debug("trtexec output (exit code %d):\n%s", proc.returncode, output.rstrip())
    if log_path is not None:
        atomic_write_text(log_path, output)
    if proc.returncode != 0 or "&&&& FAILED" in output:
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise EngineBuildError(f"trtexec failed (exit code {proc.returncode}): {' '.join(cmd)}\n{tail}")
    return TrtexecResult(command=cmd, returncode=proc.returncode, output=output, summary=parse_trtexec_summary(output))
