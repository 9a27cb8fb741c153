"""trtexec, TensorRT's reference benchmark: explicit command lines per version, and parsers for its outputs.

trtexec's defaults changed in 11.x (CUDA graphs and spin-wait on, host-device copies off, no precision flags),
so a command that relies on defaults measures different things on 10.x and 11.x. :func:`trtexec_command`
always spells the measurement settings out for the version at hand. The parsers read the three JSON exports
(``--exportTimes``, ``--exportProfile``, ``--exportLayerInfo``) and the text summary, tolerating the
differences between releases (missing keys, strings instead of objects).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from ..artifacts import atomic_write_text, read_json
from ..deps import INSTALL_HINTS
from ..errors import BenchError, ConfigError, CosepError, EngineBuildError, MissingDependencyError, unknown_name

__all__ = [
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


class TrtexecVersion(NamedTuple):
    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


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
        for flag, shapes in (("--minShapes", config.min_shapes), ("--optShapes", config.opt_shapes),
                             ("--maxShapes", config.max_shapes)):  # fmt: skip
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
    if config.skip_inference:
        cmd.append("--skipInference")
    else:
        cmd += _measurement_flags(config, v)
    for flag, path in (("--exportTimes", config.export_times), ("--exportProfile", config.export_profile),
                       ("--exportLayerInfo", config.export_layer_info)):  # fmt: skip
        if path is not None:
            cmd.append(f"{flag}={path}")
    if config.export_profile is not None and config.separate_profile_run:
        cmd.append("--separateProfileRun")
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
            raise ConfigError(f"trtexec {v} uses CUDA graphs and spin-wait by default; turning them off is not "
                              "supported here (pass the flag through extra_args)")  # fmt: skip
        if config.data_transfers:
            cmd.append("--includeDataTransfers")
    else:
        # 10.x and older default to the opposite; these flags make them measure what 11.x measures
        cmd += ["--useCudaGraph"] if config.cuda_graph else []
        cmd += [] if config.data_transfers else ["--noDataTransfers"]
        cmd += ["--useSpinWait"] if config.spin_wait else []
    for flag, value in (("--iterations", config.iterations), ("--duration", config.duration_s),
                        ("--warmUp", config.warmup_ms), ("--avgRuns", config.avg_runs)):  # fmt: skip
        if value is not None:
            cmd.append(f"{flag}={_num(value)}")
    if config.percentiles:
        if v < (8, 6, 0) and len(config.percentiles) > 1:
            raise ConfigError(f"trtexec {v} takes a single --percentile value (lists need 8.6+)")
        cmd.append("--percentile=" + ",".join(_num(p) for p in config.percentiles))
    return cmd


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


_BANNER_RE = re.compile(r"\[TensorRT v(\d+)\]")
_VERSION_LINE_RE = re.compile(r"TensorRT version:\s*(\d+)\.(\d+)\.(\d+)")


def parse_trtexec_version(text: str) -> TrtexecVersion:
    """Version from trtexec output: the banner ``[TensorRT v100300]`` (10.3.0; 8.x packs it as ``v8601``)
    or a ``TensorRT version: 10.3.0`` line."""
    m = _BANNER_RE.search(text)
    if m:
        n = int(m.group(1))
        if n < 10000:  # 8.x and 9.x: MAJOR*1000 + MINOR*100 + PATCH
            return TrtexecVersion(n // 1000, (n // 100) % 10, n % 100)
        return TrtexecVersion(n // 10000, (n // 100) % 100, n % 100)  # 10.x+: MAJOR*10000 + MINOR*100 + PATCH
    m = _VERSION_LINE_RE.search(text)
    if m:
        return TrtexecVersion(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    raise EngineBuildError("cannot find the TensorRT version in trtexec's output (expected '[TensorRT v100300]')")


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
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except FileNotFoundError as exc:
        raise MissingDependencyError(f"cannot run {cmd[0]}: {exc.strerror}") from exc
    except subprocess.TimeoutExpired as exc:
        raise EngineBuildError(f"trtexec did not finish within {timeout_s} s: {' '.join(cmd)}") from exc
    output = proc.stdout + proc.stderr
    if log_path is not None:
        atomic_write_text(log_path, output)
    if proc.returncode != 0 or "&&&& FAILED" in output:
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise EngineBuildError(f"trtexec failed (exit code {proc.returncode}): {' '.join(cmd)}\n{tail}")
    return TrtexecResult(command=cmd, returncode=proc.returncode, output=output, summary=parse_trtexec_summary(output))


# ---------------------------------------------------------------------------------------------------------
# Parsers. Formats, as trtexec 8.6-10.x writes them (sampleReporting.cpp):
#   --exportTimes:     [{"startEnqMs", "endEnqMs", "startH2dMs", "endH2dMs", "startComputeMs", "endComputeMs",
#                        "startD2hMs", "endD2hMs", "h2dMs", "computeMs", "d2hMs", "latencyMs", "enqueueMs"}, ...]
#                      (keys of disabled phases may be missing; durations can be derived from start/end pairs)
#   --exportProfile:   [{"count": N}, {"name", "timeMs", "averageMs", "medianMs", "percentage"}, ...]
#                      ("medianMs" only from 8.6/10.x on; timeMs is the total over N runs)
#   --exportLayerInfo: {"Layers": [...], "Bindings": [...]}: layers are names (strings) unless built with
#                      --profilingVerbosity=detailed, then objects {"Name", "LayerType", "Inputs", "Outputs",
#                      "TacticName", ...} whose tensors carry "Format/Datatype" (where padding shows).
# ---------------------------------------------------------------------------------------------------------


def _load(path: str | os.PathLike[str], what: str) -> Any:
    try:
        return read_json(path, what=f"trtexec {what}")
    except CosepError as exc:
        raise BenchError(str(exc)) from exc


def summarize_ms(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    """count, mean, median, min, max, std and p90/p95/p99 of millisecond samples (NaNs dropped)."""
    arr = np.asarray(values, dtype=float)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return {"count": 0.0}
    p90, p95, p99 = np.percentile(arr, [90, 95, 99])
    return {"count": float(arr.size), "mean": float(arr.mean()), "median": float(np.median(arr)),
            "min": float(arr.min()), "max": float(arr.max()), "std": float(arr.std()),
            "p90": float(p90), "p95": float(p95), "p99": float(p99)}  # fmt: skip


@dataclasses.dataclass(frozen=True, eq=False)
class TrtexecTimes:
    """Per-iteration times (ms) from ``--exportTimes``; NaN where trtexec did not record a phase."""

    latency_ms: np.ndarray  # host-side end to end: H2D + compute + D2H when copies are on, else compute
    compute_ms: np.ndarray  # GPU compute
    enqueue_ms: np.ndarray
    h2d_ms: np.ndarray
    d2h_ms: np.ndarray

    def summary(self) -> dict[str, dict[str, float]]:
        fields = {"latency": self.latency_ms, "compute": self.compute_ms, "enqueue": self.enqueue_ms,
                  "h2d": self.h2d_ms, "d2h": self.d2h_ms}  # fmt: skip
        return {k: summarize_ms(v) for k, v in fields.items() if not np.all(np.isnan(v))}


def _duration(row: Mapping[str, Any], key: str, pairs: Sequence[tuple[str, str]]) -> float:
    if key in row:
        return float(row[key])
    for start, end in pairs:
        if start in row and end in row:
            return float(row[end]) - float(row[start])
    return float("nan")


def parse_export_times(path: str | os.PathLike[str]) -> TrtexecTimes:
    data = _load(path, "times export")
    rows = data.get("times", data.get("iterations")) if isinstance(data, dict) else data
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise BenchError(f"{path} is not a trtexec --exportTimes file (expected a list of per-iteration objects)")
    cols: dict[str, list[float]] = {k: [] for k in ("latency", "compute", "enqueue", "h2d", "d2h")}
    for r in rows:
        compute = _duration(r, "computeMs", [("startComputeMs", "endComputeMs")])
        cols["compute"].append(compute)
        cols["enqueue"].append(_duration(r, "enqueueMs", [("startEnqMs", "endEnqMs")]))
        cols["h2d"].append(_duration(r, "h2dMs", [("startH2dMs", "endH2dMs"), ("startInMs", "endInMs")]))
        cols["d2h"].append(_duration(r, "d2hMs", [("startD2hMs", "endD2hMs"), ("startOutMs", "endOutMs")]))
        latency = _duration(r, "latencyMs", [("startH2dMs", "endD2hMs"), ("startInMs", "endOutMs")])
        cols["latency"].append(compute if np.isnan(latency) else latency)
    arrays = {k: np.asarray(v, dtype=float) for k, v in cols.items()}
    if np.all(np.isnan(arrays["latency"])):
        raise BenchError(f"{path}: no latency or compute times in any iteration")
    return TrtexecTimes(latency_ms=arrays["latency"], compute_ms=arrays["compute"], enqueue_ms=arrays["enqueue"],
                        h2d_ms=arrays["h2d"], d2h_ms=arrays["d2h"])  # fmt: skip


@dataclasses.dataclass(frozen=True)
class LayerTime:
    name: str
    total_ms: float  # over all profiled runs
    average_ms: float
    median_ms: float | None
    percentage: float | None


def parse_export_profile(path: str | os.PathLike[str]) -> list[LayerTime]:
    data = _load(path, "profile export")
    if isinstance(data, list) and data and isinstance(data[0], list):  # one list per profile: take the first
        data = data[0]
    if not isinstance(data, list):
        raise BenchError(f"{path} is not a trtexec --exportProfile file (expected a JSON list)")
    count = next((int(r["count"]) for r in data if isinstance(r, dict) and "count" in r), 0)
    layers = []
    for r in data:
        if not isinstance(r, dict) or "name" not in r:
            continue
        total = float(r.get("timeMs", "nan"))
        average = float(r["averageMs"]) if "averageMs" in r else (total / count if count else float("nan"))
        median = float(r["medianMs"]) if "medianMs" in r else None
        pct = float(r["percentage"]) if "percentage" in r else None
        layers.append(LayerTime(name=str(r["name"]), total_ms=total, average_ms=average, median_ms=median,
                                percentage=pct))  # fmt: skip
    if not layers:
        raise BenchError(f"{path}: no per-layer entries (objects with a 'name') in the profile")
    return layers


@dataclasses.dataclass(frozen=True)
class LayerDesc:
    name: str
    layer_type: str | None  # None when the engine was not built with detailed profiling verbosity
    input_formats: tuple[str, ...] = ()
    output_formats: tuple[str, ...] = ()
    tactic: str | None = None

    @property
    def is_reformat(self) -> bool:
        """A layer TensorRT inserted to change tensor layout/precision (padding, CHW8/CHW32 conversions)."""
        return self.layer_type == "Reformat" or "Reformatting CopyNode" in self.name


@dataclasses.dataclass(frozen=True)
class LayerInfo:
    layers: tuple[LayerDesc, ...]
    bindings: tuple[str, ...]

    @property
    def detailed(self) -> bool:
        return any(layer.layer_type is not None for layer in self.layers)

    @property
    def reformat_layers(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers if layer.is_reformat)


def _formats(tensors: Any) -> tuple[str, ...]:
    if not isinstance(tensors, list):
        return ()
    return tuple(str(t.get("Format/Datatype", "")) for t in tensors if isinstance(t, dict))


def parse_layer_info(path: str | os.PathLike[str]) -> LayerInfo:
    data = _load(path, "layer info export")
    raw_layers = data.get("Layers") if isinstance(data, dict) else data
    if not isinstance(raw_layers, list):
        raise BenchError(f"{path} is not a trtexec --exportLayerInfo file (expected a 'Layers' list)")
    layers = []
    for entry in raw_layers:
        if isinstance(entry, str):
            layers.append(LayerDesc(name=entry, layer_type=None))
        elif isinstance(entry, dict):
            tactic = entry.get("TacticName", entry.get("TacticValue"))
            layers.append(LayerDesc(
                name=str(entry.get("Name", "")), layer_type=str(entry.get("LayerType", "unknown")),
                input_formats=_formats(entry.get("Inputs")), output_formats=_formats(entry.get("Outputs")),
                tactic=None if tactic is None else str(tactic),
            ))  # fmt: skip
    bindings = data.get("Bindings", []) if isinstance(data, dict) else []
    return LayerInfo(layers=tuple(layers), bindings=tuple(str(b) for b in bindings))


@dataclasses.dataclass(frozen=True)
class LayerComparison:
    name: str
    dense_ms: float | None
    pruned_ms: float | None
    matched_by: str  # "name", "order" or "" (only on one side)

    @property
    def delta_ms(self) -> float | None:
        return None if self.dense_ms is None or self.pruned_ms is None else self.pruned_ms - self.dense_ms

    @property
    def ratio(self) -> float | None:
        if self.dense_ms is None or self.pruned_ms is None or self.dense_ms == 0:
            return None
        return self.pruned_ms / self.dense_ms


def compare_layer_profiles(dense: Sequence[LayerTime], pruned: Sequence[LayerTime]) -> list[LayerComparison]:
    """Per-layer average times side by side, dense order first.

    Layers pair up by name (pruning keeps layer names); the rest pair up in order, since fusions can name
    a layer differently in each engine; what is left stands alone.
    """
    by_name = {layer.name: layer for layer in pruned}
    paired = {layer.name for layer in dense if layer.name in by_name}
    left_dense = [layer for layer in dense if layer.name not in paired]
    left_pruned = [layer for layer in pruned if layer.name not in paired]
    by_order = dict(zip((d.name for d in left_dense), left_pruned, strict=False))
    used = {id(p) for p in by_order.values()}
    rows = []
    for layer in dense:
        if layer.name in paired:
            rows.append(LayerComparison(layer.name, layer.average_ms, by_name[layer.name].average_ms, "name"))
        elif layer.name in by_order:
            other = by_order[layer.name]
            name = layer.name if other.name == layer.name else f"{layer.name} | {other.name}"
            rows.append(LayerComparison(name, layer.average_ms, other.average_ms, "order"))
        else:
            rows.append(LayerComparison(layer.name, layer.average_ms, None, ""))
    rows += [LayerComparison(p.name, None, p.average_ms, "") for p in left_pruned if id(p) not in used]
    return rows


_STAT_LINES = {"Latency": "latency", "Enqueue Time": "enqueue", "H2D Latency": "h2d",
               "GPU Compute Time": "gpu_compute", "D2H Latency": "d2h"}  # fmt: skip
_NUM = r"([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"


@dataclasses.dataclass(frozen=True)
class TrtexecSummary:
    """The "Performance summary" of trtexec's log, with device and build facts from the same log."""

    throughput_qps: float | None = None
    latency: dict[str, float] = dataclasses.field(default_factory=dict)  # min/max/mean/median/p90... in ms
    enqueue: dict[str, float] = dataclasses.field(default_factory=dict)
    h2d: dict[str, float] = dataclasses.field(default_factory=dict)
    gpu_compute: dict[str, float] = dataclasses.field(default_factory=dict)
    d2h: dict[str, float] = dataclasses.field(default_factory=dict)
    total_host_walltime_s: float | None = None
    total_gpu_compute_s: float | None = None
    device_name: str | None = None
    compute_capability: str | None = None
    tensorrt_version: str | None = None
    engine_build_s: float | None = None
    warnings: tuple[str, ...] = ()


def _stats(text: str) -> dict[str, float]:
    out = {k: float(v) for k, v in re.findall(rf"\b(min|max|mean|median) = {_NUM} ms", text)}
    for pct, value in re.findall(rf"percentile\(({_NUM[1:-1]})%\) = {_NUM} ms", text):  # 8.6+
        out[f"p{_num(float(pct))}"] = float(value)
    for value, pct in re.findall(rf"percentile = {_NUM} ms at ({_NUM[1:-1]})%", text):  # older 8.x
        out[f"p{_num(float(pct))}"] = float(value)
    return out


def parse_trtexec_summary(text: str) -> TrtexecSummary:
    """Read a trtexec log (stdout). Fields trtexec did not print stay None/empty."""
    values: dict[str, Any] = {}
    warnings = []
    for raw in text.splitlines():
        line = re.sub(r"^(\[[^\]]*\]\s*)*", "", raw.strip()) if raw.lstrip().startswith("[") else raw.strip()
        if "[W]" in raw:
            warnings.append(line)
        key, _, rest = line.partition(":")
        if key in _STAT_LINES and "min =" in rest:  # skip the "=== Explanations ===" prose lines
            values.setdefault(_STAT_LINES[key], _stats(rest))
        elif key == "Throughput" and (m := re.match(rf"\s*{_NUM} qps", rest)):
            values.setdefault("throughput_qps", float(m.group(1)))
        elif key in ("Total Host Walltime", "Total GPU Compute Time") and (m := re.match(rf"\s*{_NUM} s", rest)):
            field = "total_host_walltime_s" if key == "Total Host Walltime" else "total_gpu_compute_s"
            values.setdefault(field, float(m.group(1)))
        elif key == "Selected Device":
            values.setdefault("device_name", rest.strip())
        elif key == "Compute Capability":
            values.setdefault("compute_capability", rest.strip())
        elif key == "TensorRT version":
            values.setdefault("tensorrt_version", rest.strip())
        elif m := re.search(rf"Engine built in {_NUM} sec", line):
            values.setdefault("engine_build_s", float(m.group(1)))
    if "tensorrt_version" not in values and _BANNER_RE.search(text):
        values["tensorrt_version"] = str(parse_trtexec_version(text))
    return TrtexecSummary(**values, warnings=tuple(warnings[:20]))
