"""Per-layer times of a whole model on ONNX Runtime (CPU), mapped back to the latency table's layers.

The closed loop corrects the table layer by layer with these times. ONNX Runtime's profiler reports one
``<node>_kernel_time`` event per node and run; after its graph optimisations the node names no longer
carry the module names (``hardtanh_3_nchwc``, ``getitem_24_nchwc``: named after the fused outputs), so
nodes are mapped to layers by shape, in execution order: a Conv node matches the first unmatched
convolution layer (in call order) with the same kernel, input and output spatial size, depthwise-ness and
channel counts (the NCHWc layout pads channels up to its block, so the node's counts may exceed the
layer's by less than one block, 16 floats at most); a Gemm/MatMul node matches a linear layer with the
same output width. Layers of equal shape are interchangeable, so order differences between the
exporter's call order and ONNX Runtime's topological order do not matter. Layout changes, pooling and
additions that are not fused into a convolution stay outside every layer (the loop's global residual).
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import statistics
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cosep_deploy.latency.layers import LayerSpec
from cosep_deploy.latency.measure_ort import out_hw

__all__ = ["LayerTimes", "NodeTime", "match_nodes", "node_times", "profile_layers_ort"]

_BLOCK = 16  # the widest NCHWc channel block ONNX Runtime uses on x86 (AVX-512)
_GEMM_OPS = ("Gemm", "MatMul", "FusedGemm", "FusedMatMul")


@dataclasses.dataclass(frozen=True)
class NodeTime:
    """One profiled node: its median kernel time per run and the shapes the profiler recorded."""

    name: str
    op: str
    ms: float
    inputs: tuple[tuple[int, ...], ...]
    outputs: tuple[tuple[int, ...], ...]


@dataclasses.dataclass(frozen=True)
class LayerTimes:
    """Measured time per table layer (ms, median per run), the whole run's median, and what did not match."""

    layer_ms: dict[str, float]
    run_ms: float | None
    unmatched_layers: list[str]
    unmatched_nodes: list[str]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _shapes(raw: Any) -> tuple[tuple[int, ...], ...]:
    if not isinstance(raw, list):
        return ()
    out = []
    for s in raw:
        dims = next(iter(s.values()), None) if isinstance(s, dict) and s else None
        out.append(tuple(int(d) for d in dims) if isinstance(dims, list) else ())
    return tuple(out)


def _events(trace: str | Path) -> list[dict[str, Any]]:
    events = json.loads(Path(trace).read_text())
    return list(events.get("traceEvents", []) if isinstance(events, dict) else events)


def _runs(events: Sequence[Mapping[str, Any]], skip_runs: int) -> list[tuple[float, float]]:
    """(start, end) in us of every ``model_run`` after the first ``skip_runs``, in time order."""
    runs = sorted(
        (float(e["ts"]), float(e["ts"]) + float(e["dur"]))
        for e in events
        if e.get("cat") == "Session" and e.get("name") == "model_run"
    )
    return runs[skip_runs:]


def node_times(trace: str | Path, *, skip_runs: int = 0) -> list[NodeTime]:
    """Nodes of an ONNX Runtime profile in execution order, each with its median kernel ms over the runs
    after the first ``skip_runs`` (a run that did not execute a node counts 0 for it)."""
    events = _events(trace)
    runs = _runs(events, skip_runs)
    starts = [r[0] for r in runs]
    per_run: dict[str, list[float]] = {}
    meta: dict[str, tuple[str, Any, Any]] = {}
    for e in events:
        name = str(e.get("name", ""))
        if e.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        i = bisect.bisect_right(starts, float(e["ts"])) - 1
        if i < 0 or float(e["ts"]) > runs[i][1]:
            continue  # a warm-up run, or outside every run
        node = name[: -len("_kernel_time")]
        args = e.get("args") or {}
        meta.setdefault(
            node, (str(args.get("op_name", "")), args.get("input_type_shape"), args.get("output_type_shape"))
        )
        per_run.setdefault(node, [0.0] * len(runs))[i] += float(e.get("dur", 0.0)) / 1e3
    return [
        NodeTime(node, meta[node][0], statistics.median(times), _shapes(meta[node][1]), _shapes(meta[node][2]))
        for node, times in per_run.items()
    ]


def _padded(node_c: int, layer_c: int) -> bool:
    return layer_c <= node_c < layer_c + _BLOCK


def _conv_fits(node: NodeTime, spec: LayerSpec, cin: int, cout: int) -> bool:
    if node.op != "Conv" or spec.kind == "linear" or len(node.inputs) < 2 or not node.outputs:
        return False
    x, w, y = node.inputs[0], node.inputs[1], node.outputs[0]
    if len(x) != 4 or len(w) != 4 or len(y) != 4:
        return False
    depthwise = w[1] == 1 and x[1] > 1
    if depthwise != spec.tied or tuple(w[2:]) != spec.kernel or tuple(x[2:]) != spec.input_hw:
        return False
    return tuple(y[2:]) == tuple(out_hw(spec)) and _padded(w[0], cout) and (spec.tied or _padded(x[1], cin))


def _gemm_fits(node: NodeTime, spec: LayerSpec, cout: int) -> bool:
    if node.op not in _GEMM_OPS or spec.kind != "linear" or not node.outputs or not node.outputs[0]:
        return False
    return node.outputs[0][-1] == cout


def match_nodes(
    nodes: Sequence[NodeTime], layers: Sequence[LayerSpec], counts: Mapping[str, int], sizes: Mapping[str, int]
) -> tuple[dict[str, float], list[str], list[str]]:
    """Map profiled nodes to ``layers`` (at the widths ``counts`` give); returns (layer -> ms, unmatched
    layer names, unmatched Conv/Gemm node names)."""
    widths = {s.name: s.widths(counts, sizes) for s in layers}
    free = list(layers)
    matched: dict[str, float] = {}
    stray: list[str] = []
    for node in nodes:
        if node.op != "Conv" and node.op not in _GEMM_OPS:
            continue
        hit = next(
            (s for s in free if _conv_fits(node, s, *widths[s.name]) or _gemm_fits(node, s, widths[s.name][1])),
            None,
        )
        if hit is None:
            stray.append(node.name)
            continue
        free.remove(hit)
        matched[hit.name] = node.ms
    return matched, [s.name for s in free], stray


def profile_layers_ort(
    onnx_path: str | Path,
    layers: Sequence[LayerSpec],
    counts: Mapping[str, int],
    sizes: Mapping[str, int],
    *,
    batch: int,
    threads: int,
    runs: int = 20,
    warmup: int = 3,
) -> LayerTimes:
    """Profile the whole model (the benchmark's session settings) and return each table layer's time."""
    import onnxruntime as ort

    from cosep_deploy.backends.onnxruntime.runner import ort_session_options

    with tempfile.TemporaryDirectory(prefix="cosep-latency-profile-") as tmp:
        opts = ort_session_options(threads)
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "p")
        sess = ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        shape = [batch, *[int(d) for d in inp.shape[1:]]]
        feed = {inp.name: np.random.default_rng(0).standard_normal(shape, dtype=np.float32)}
        for _ in range(warmup + runs):
            sess.run(None, feed)
        trace = sess.end_profiling()
        nodes = node_times(trace, skip_runs=warmup)
        timed = _runs(_events(trace), warmup)
        del sess
    run_ms = statistics.median((end - start) / 1e3 for start, end in timed) if timed else None
    matched, free, stray = match_nodes(nodes, layers, counts, sizes)
    return LayerTimes(matched, run_ms, free, stray)
