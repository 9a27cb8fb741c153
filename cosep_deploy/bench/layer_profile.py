"""Per-layer time of one engine, read from a profiler's output: :class:`LayerProfile`.

Two sources of per-layer times:

- ONNX Runtime's own profiler (``SessionOptions.enable_profiling``). ``end_profiling()`` writes a Chrome-trace
  JSON list of events. Each executed node gives a ``"cat": "Node"`` event named ``<node>_kernel_time`` with the
  kernel's ``dur`` in microseconds and ``args.op_name`` / ``args.input_type_shape``; each ``InferenceSession.run``
  gives a ``"cat": "Session"`` event named ``model_run`` that spans its nodes, so warm-up runs can be left out.
  Node names are those of the graph ORT executes after its optimisations: a Conv+Relu in the NCHWc layout of
  x86 CPUs runs as ``relu_nchwc``, and layout changes show as ``ReorderInput``/``ReorderOutput`` nodes.
- trtexec ``--exportProfile`` (average ms per layer; TensorRT names a fused layer by its ONNX nodes joined with
  `` + ``), optionally with ``--exportLayerInfo`` of a ``--profilingVerbosity=detailed`` build for layer types
  and convolution groups.

Every layer gets a coarse kind (:func:`layer_kind`) for the op-type summary. Pairing a dense and a pruned
profile is in :mod:`cosep_deploy.bench.layers`; taking the profiles in :mod:`cosep_deploy.bench.layer_sources`.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from cosep_deploy.artifacts import read_json
from cosep_deploy.errors import BenchError, CosepError

__all__ = [
    "CONV",
    "DEPTHWISE",
    "GEMM",
    "GROUPED",
    "LAYOUT",
    "POINTWISE",
    "POOL",
    "UNKNOWN",
    "LayerProfile",
    "ProfiledLayer",
    "layer_kind",
]

CONV, DEPTHWISE, GROUPED = "Conv", "Conv (depthwise)", "Conv (grouped)"
GEMM, LAYOUT, POOL, POINTWISE, UNKNOWN = (
    "Gemm/MatMul",
    "Layout (reorder/reformat)",
    "Pooling/Reduce",
    "Elementwise/activation",
    "unknown",
)
_POINTWISE_OPS = {
    "add",
    "sub",
    "mul",
    "div",
    "sum",
    "relu",
    "clip",
    "sigmoid",
    "hardsigmoid",
    "hardswish",
    "tanh",
    "leakyrelu",
    "prelu",
    "erf",
    "gelu",
    "silu",
    "batchnormalization",
    "elementwise",
    "activation",
    "scale",
}


def layer_kind(
    op_type: str | None,
    name: str = "",
    *,
    channels: int | None = None,
    per_group: int | None = None,
    groups: int | None = None,
) -> str:
    """The coarse kind of a layer for the op-type summary: Conv (dense, depthwise, grouped), Gemm/MatMul,
    layout changes, pooling, element-wise; other op types stand for themselves.

    Conv groups come either as ``channels`` (input channels) and ``per_group`` (the weight's second dimension),
    as ONNX Runtime shows them, or as ``groups`` (with ``channels`` if known), as TensorRT's layer info does.
    """
    if op_type is None:
        return LAYOUT if name.startswith("Reformatting CopyNode") else UNKNOWN
    op = op_type.lower()
    if "conv" in op:
        if groups is not None:
            if groups <= 1:
                return CONV
            return DEPTHWISE if channels is None or groups == channels else GROUPED
        if per_group is not None and channels is not None and per_group < channels and channels % per_group == 0:
            return DEPTHWISE if per_group == 1 else GROUPED
        return CONV
    if any(k in op for k in ("gemm", "matmul", "matrixmultiply", "fullyconnected")):
        return GEMM
    if "reorder" in op or "reformat" in op or name.startswith("Reformatting CopyNode"):
        return LAYOUT
    if "pool" in op or "reduce" in op:
        return POOL
    if op in _POINTWISE_OPS or "pointwise" in op:
        return POINTWISE
    return op_type


@dataclasses.dataclass(frozen=True)
class ProfiledLayer:
    name: str
    op_type: str | None  # None when the source does not say (trtexec without layer info)
    kind: str  # see layer_kind
    mean_ms: float  # per iteration (all of the layer's executions in one iteration)
    median_ms: float | None  # per iteration, robust to the odd slow run; None where the source has none
    share: float  # of the profile's total layer time (means)
    count: int  # executions profiled

    def time_ms(self, statistic: str) -> float:
        """The median per iteration where asked for and known, else the mean."""
        return self.median_ms if statistic == "median" and self.median_ms is not None else self.mean_ms


@dataclasses.dataclass
class _Acc:
    """One layer's times while a profile is read."""

    op_type: str | None
    kind: str
    per_run: dict[int, float] = dataclasses.field(default_factory=dict)  # run index -> summed duration
    count: int = 0


@dataclasses.dataclass(frozen=True)
class LayerProfile:
    """Per-layer times of one engine, in execution order."""

    source: str  # "onnxruntime" or "trtexec"
    layers: tuple[ProfiledLayer, ...]
    iterations: int
    run_ms: float | None = None  # median time of a whole run where the profiler records it (ORT's model_run)

    @property
    def statistic(self) -> str:
        """The per-iteration statistic every layer has: "median" (ONNX Runtime; trtexec 8.6+), else "mean"."""
        return "median" if self.layers and all(layer.median_ms is not None for layer in self.layers) else "mean"

    def total_ms(self, statistic: str = "mean") -> float:
        return sum(layer.time_ms(statistic) for layer in self.layers)

    def by_kind(self, statistic: str = "mean") -> dict[str, float]:
        out: dict[str, float] = {}
        for layer in self.layers:
            out[layer.kind] = out.get(layer.kind, 0.0) + layer.time_ms(statistic)
        return out

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "layers": [dataclasses.asdict(layer) for layer in self.layers]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LayerProfile:
        layers = tuple(ProfiledLayer(**layer) for layer in data["layers"])
        return cls(source=data["source"], layers=layers, iterations=data["iterations"], run_ms=data.get("run_ms"))

    @classmethod
    def from_onnxruntime_trace(cls, path: str | os.PathLike[str], *, skip_runs: int = 0) -> LayerProfile:
        """Read the trace ``InferenceSession.end_profiling()`` wrote, leaving out the first ``skip_runs`` runs
        (warm-up). A node that runs twice in one run counts twice in that run's time."""
        events = _trace_events(path)
        runs = sorted((float(e["ts"]), float(e["ts"]) + float(e["dur"])) for e in events if _is_run(e))
        nodes = [e for e in events if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time")]
        if not nodes:
            raise BenchError(
                f"{path}: no node events ('cat': 'Node', '<node>_kernel_time') in the ONNX Runtime profile; "
                "create the session with enable_profiling and run it at least once before end_profiling()"
            )
        if runs and skip_runs >= len(runs):
            raise BenchError(f"{path}: {len(runs)} profiled runs, all left out as warm-up ({skip_runs})")
        starts = [start for start, _ in runs]
        acc: dict[str, _Acc] = {}  # in first-seen order: execution order
        for k, e in enumerate(nodes):
            run = k  # without model_run events (older releases), every execution is its own sample
            if runs:
                run = bisect.bisect_right(starts, float(e["ts"])) - 1
                if run < skip_runs or float(e["ts"]) > runs[run][1]:
                    continue  # a warm-up run, or outside every run
            name = str(e["name"])[: -len("_kernel_time")]
            if name not in acc:
                args = e.get("args") or {}
                op = args.get("op_name")
                acc[name] = _Acc(None if op is None else str(op), _ort_kind(op, name, args.get("input_type_shape")))
            layer = acc[name]
            layer.per_run[run] = layer.per_run.get(run, 0.0) + float(e.get("dur", 0.0)) / 1e3  # us -> ms
            layer.count += 1
        if runs:
            iterations = len(runs) - skip_runs
            run_ms: float | None = statistics.median(end - start for start, end in runs[skip_runs:]) / 1e3
        else:
            iterations, run_ms = max(layer.count for layer in acc.values()), None
        rows = []
        for name, layer in acc.items():
            samples = list(layer.per_run.values())
            samples += [0.0] * max(0, iterations - len(samples)) if runs else []  # runs that skipped the node
            mean = sum(layer.per_run.values()) / iterations
            rows.append((name, layer.op_type, layer.kind, mean, statistics.median(samples), layer.count))
        return _profile("onnxruntime", rows, iterations, run_ms)

    @classmethod
    def from_trtexec(
        cls, profile: str | os.PathLike[str], layer_info: str | os.PathLike[str] | None = None
    ) -> LayerProfile:
        """From trtexec's ``--exportProfile`` JSON; ``layer_info`` (``--exportLayerInfo``, detailed verbosity)
        adds layer types and convolution groups. A name listed twice is one layer: its times add up."""
        from cosep_deploy.backends.trtexec.parse import parse_export_profile

        details = _trt_layer_details(layer_info) if layer_info is not None else {}
        rows: dict[str, list[Any]] = {}
        for t in parse_export_profile(profile):
            count = round(t.total_ms / t.average_ms) if t.average_ms > 0 and math.isfinite(t.total_ms) else 0
            if t.name in rows:
                rows[t.name][3] += t.average_ms
                rows[t.name][4] = None
                rows[t.name][5] += count
                continue
            op, channels, groups = details.get(t.name, (None, None, None))
            kind = layer_kind(op, t.name, channels=channels, groups=groups)
            rows[t.name] = [t.name, op, kind, t.average_ms, t.median_ms, count]
        iterations = max((r[5] for r in rows.values()), default=0)
        return _profile("trtexec", list(rows.values()), iterations, None)


def _profile(source: str, rows: Sequence[Sequence[Any]], iterations: int, run_ms: float | None) -> LayerProfile:
    """rows: (name, op type, kind, mean ms, median ms, count)."""
    total = sum(float(r[3]) for r in rows)
    layers = tuple(
        ProfiledLayer(
            name=str(n),
            op_type=None if op is None else str(op),
            kind=str(kind),
            mean_ms=float(mean),
            median_ms=None if median is None else float(median),
            share=float(mean) / total if total > 0 else 0.0,
            count=int(count),
        )
        for n, op, kind, mean, median, count in rows
    )
    return LayerProfile(source=source, layers=layers, iterations=int(iterations), run_ms=run_ms)


def _trace_events(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    try:
        data = read_json(path, what="ONNX Runtime profile")
    except CosepError as exc:
        raise BenchError(str(exc)) from exc
    events = data.get("traceEvents") if isinstance(data, dict) else data
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise BenchError(f"{path} is not an ONNX Runtime profile (expected a JSON list of trace events)")
    return events


def _is_run(event: Mapping[str, Any]) -> bool:
    return event.get("cat") == "Session" and event.get("name") == "model_run" and "dur" in event


def _ort_kind(op: Any, name: str, shapes: Any) -> str:
    """Kind of an ORT node; for convolutions, groups come from the input and weight shapes
    (``[{"float": [N, C, H, W]}, {"float": [M, C/groups, kH, kW]}, ...]``)."""
    if op is None:
        return UNKNOWN
    dims = [next(iter(s.values()), None) for s in shapes if isinstance(s, dict)] if isinstance(shapes, list) else []
    x, w = [*dims, None, None][:2]
    if "conv" in str(op).lower() and isinstance(x, list) and isinstance(w, list) and len(x) >= 3 and len(w) >= 3:
        return layer_kind(str(op), name, channels=int(x[1]), per_group=int(w[1]))
    return layer_kind(str(op), name)


def _trt_layer_details(path: str | os.PathLike[str]) -> dict[str, tuple[str | None, int | None, int | None]]:
    """Layer name -> (layer type, input channels, conv groups) from ``--exportLayerInfo``. Types come from the
    shared parser; groups from the detailed entries' ``Groups`` (and the first input's ``Dimensions``)."""
    from cosep_deploy.backends.trtexec.parse import parse_layer_info

    info = parse_layer_info(path)
    raw = read_json(path, what="trtexec layer info export")
    entries = raw.get("Layers", []) if isinstance(raw, dict) else raw
    groups: dict[str, tuple[int | None, int | None]] = {}
    for e in entries:
        if isinstance(e, dict) and isinstance(e.get("Groups"), int):
            inputs = e.get("Inputs") or [{}]
            dims = inputs[0].get("Dimensions") if isinstance(inputs[0], dict) else None
            channels = dims[1] if isinstance(dims, list) and len(dims) > 1 and isinstance(dims[1], int) else None
            groups[str(e.get("Name", ""))] = (channels if channels and channels > 0 else None, int(e["Groups"]))
    return {d.name: (d.layer_type, *groups.get(d.name, (None, None))) for d in info.layers}
