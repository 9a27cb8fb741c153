"""Parsers of trtexec's outputs: its version banner, the three JSON exports and the text summary.

Formats, as trtexec 8.6-10.x writes them (sampleReporting.cpp):

- ``--exportTimes``: ``[{"startEnqMs", "endEnqMs", "startH2dMs", "endH2dMs", "startComputeMs", "endComputeMs",
  "startD2hMs", "endD2hMs", "h2dMs", "computeMs", "d2hMs", "latencyMs", "enqueueMs"}, ...]`` (keys of disabled
  phases may be missing; durations can be derived from start/end pairs)
- ``--exportProfile``: ``[{"count": N}, {"name", "timeMs", "averageMs", "medianMs", "percentage"}, ...]``
  (``medianMs`` only from 8.6/10.x on; ``timeMs`` is the total over N runs)
- ``--exportLayerInfo``: ``{"Layers": [...], "Bindings": [...]}``: layers are names (strings) unless built with
  ``--profilingVerbosity=detailed``, then objects ``{"Name", "LayerType", "Inputs", "Outputs", "TacticName",
  ...}`` whose tensors carry ``"Format/Datatype"`` (where padding shows). TensorRT 11 writes no
  ``"Bindings"`` and splits ``"Format/Datatype"`` into ``"Format"`` and ``"Datatype"``; the engine's IO
  tensors are then the tensors no layer produces (inputs) or consumes (outputs).

The parsers tolerate the differences between releases (missing keys, strings instead of objects).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from cosep_deploy.artifacts import read_json
from cosep_deploy.errors import BenchError, CosepError, EngineBuildError

__all__ = [
    "LayerComparison",
    "LayerDesc",
    "LayerInfo",
    "LayerTime",
    "TrtexecSummary",
    "TrtexecTimes",
    "TrtexecVersion",
    "compare_layer_profiles",
    "format_number",
    "parse_export_profile",
    "parse_export_times",
    "parse_layer_info",
    "parse_trtexec_summary",
    "parse_trtexec_version",
    "summarize_ms",
]


class TrtexecVersion(NamedTuple):
    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def format_number(value: float) -> str:
    """``10.0`` -> ``10``, ``2.5`` -> ``2.5``: how trtexec flags and percentile keys spell numbers."""
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
    return {
        "count": float(arr.size),
        "mean": float(arr.mean()),
        "median": float(np.median(arr)),
        "min": float(arr.min()),
        "max": float(arr.max()),
        "std": float(arr.std()),
        "p90": float(p90),
        "p95": float(p95),
        "p99": float(p99),
    }


@dataclasses.dataclass(frozen=True, eq=False)
class TrtexecTimes:
    """Per-iteration times (ms) from ``--exportTimes``; NaN where trtexec did not record a phase."""

    latency_ms: np.ndarray  # host-side end to end: H2D + compute + D2H when copies are on, else compute
    compute_ms: np.ndarray  # GPU compute
    enqueue_ms: np.ndarray
    h2d_ms: np.ndarray
    d2h_ms: np.ndarray

    def summary(self) -> dict[str, dict[str, float]]:
        fields = {
            "latency": self.latency_ms,
            "compute": self.compute_ms,
            "enqueue": self.enqueue_ms,
            "h2d": self.h2d_ms,
            "d2h": self.d2h_ms,
        }
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
    return TrtexecTimes(
        latency_ms=arrays["latency"],
        compute_ms=arrays["compute"],
        enqueue_ms=arrays["enqueue"],
        h2d_ms=arrays["h2d"],
        d2h_ms=arrays["d2h"],
    )


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
        layers.append(
            LayerTime(name=str(r["name"]), total_ms=total, average_ms=average, median_ms=median, percentage=pct)
        )
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


def _format(tensor: Mapping[str, Any], path: str | os.PathLike[str], layer: str) -> str:
    if "Format/Datatype" in tensor:  # 8.x-10.x
        return str(tensor["Format/Datatype"])
    if "Format" in tensor or "Datatype" in tensor:  # 11.x: split in two
        return " ".join(str(tensor[k]) for k in ("Format", "Datatype") if tensor.get(k) not in (None, ""))
    raise BenchError(f"{path}: a tensor of layer {layer!r} has no 'Format/Datatype' nor 'Format'/'Datatype'")


def _formats(tensors: Any, path: str | os.PathLike[str], layer: str) -> tuple[str, ...]:
    if not isinstance(tensors, list):
        return ()
    return tuple(_format(t, path, layer) for t in tensors if isinstance(t, dict))


def _io_tensors(raw_layers: list[Any]) -> tuple[str, ...]:
    """Tensors no layer produces (engine inputs) then tensors no layer consumes (outputs), in order."""
    ins: list[str] = []
    outs: list[str] = []
    for entry in raw_layers:
        if isinstance(entry, dict):
            ins += [str(t.get("Name")) for t in entry.get("Inputs") or [] if isinstance(t, dict)]
            outs += [str(t.get("Name")) for t in entry.get("Outputs") or [] if isinstance(t, dict)]
    produced, consumed = set(outs), set(ins)
    first = [n for n in dict.fromkeys(ins) if n not in produced]
    last = [n for n in dict.fromkeys(outs) if n not in consumed]
    return tuple(first + last)


def parse_layer_info(path: str | os.PathLike[str]) -> LayerInfo:
    data = _load(path, "layer info export")
    raw_layers = data.get("Layers") if isinstance(data, dict) else data
    if not isinstance(raw_layers, list) or not raw_layers:
        raise BenchError(f"{path} is not a trtexec --exportLayerInfo file (expected a non-empty 'Layers' list)")
    layers = []
    for entry in raw_layers:
        if isinstance(entry, str):
            layers.append(LayerDesc(name=entry, layer_type=None))
        elif isinstance(entry, dict):
            tactic = entry.get("TacticName", entry.get("TacticValue"))
            name = str(entry.get("Name", ""))
            layers.append(
                LayerDesc(
                    name=name,
                    layer_type=str(entry.get("LayerType", "unknown")),
                    input_formats=_formats(entry.get("Inputs"), path, name),
                    output_formats=_formats(entry.get("Outputs"), path, name),
                    tactic=None if tactic is None else str(tactic),
                )
            )
        else:
            raise BenchError(f"{path}: a 'Layers' entry is neither a name nor an object: {entry!r}"[:200])
    if isinstance(data, dict) and "Bindings" in data:
        bindings = tuple(str(b) for b in data["Bindings"])
    else:
        bindings = _io_tensors(raw_layers)
    return LayerInfo(layers=tuple(layers), bindings=bindings)


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


_STAT_LINES = {
    "Latency": "latency",
    "Enqueue Time": "enqueue",
    "H2D Latency": "h2d",
    "GPU Compute Time": "gpu_compute",
    "D2H Latency": "d2h",
}
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
        out[f"p{format_number(float(pct))}"] = float(value)
    for value, pct in re.findall(rf"percentile = {_NUM} ms at ({_NUM[1:-1]})%", text):  # older 8.x
        out[f"p{format_number(float(pct))}"] = float(value)
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
