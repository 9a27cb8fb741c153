"""Build a latency table on ONNX Runtime (CPU): one small ONNX graph per layer shape and grid point.

Each point is a graph of the one layer (Conv + Relu, which ONNX Runtime fuses as it fuses the model's
Conv + BN + Relu; Gemm for a linear layer) at the kept widths, run under the benchmark's session settings
(:func:`~cosep_deploy.backends.onnxruntime.runner.ort_session_options`: intra-op threads, spin-waiting off,
all graph optimisations). The layer's time is its kernel time from ONNX Runtime's profiler: on x86 CPUs a
lone convolution is wrapped in NCHW <-> NCHWc layout changes (``ReorderInput``/``ReorderOutput``) that
the whole model does once, not per layer, so they are left out (measured here: 0.2 ms of reorder around
a 0.5 ms 1x1 convolution at 56x56). The first ``warmup`` runs are dropped; the median of the rest is the
time, and the interquartile range over the median its noise.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cosep_deploy.artifacts import provenance
from cosep_deploy.latency.layers import LayerSpec
from cosep_deploy.latency.table import LatencyTable, TableKey, noise_summary
from cosep_deploy.progress import Progress, resolve_progress

__all__ = [
    "axis_grid",
    "build_table_ort",
    "cpu_identity",
    "measure_point",
    "onnx_for_layer",
    "out_hw",
    "whole_model_ms",
]

_LAYOUT_OPS = ("ReorderInput", "ReorderOutput", "Transpose")


def cpu_identity() -> str:
    """This CPU as a table key: model name and the SIMD flags that select ONNX Runtime's kernels."""
    from cosep_deploy.bench.environment import cpu_model

    model, flags = cpu_model()
    return f"{model} [{' '.join(flags)}]"


def axis_grid(full: int, low: int, round_to: int, points: int) -> list[int]:
    """Up to ``points`` widths from ``low`` to ``full`` on multiples of ``round_to`` (``full`` included)."""
    low = max(1, min(low, full))
    if points < 2 or low >= full:
        return [full]
    raw = np.linspace(low, full, points)
    snapped = {min(full, max(round_to, int(math.ceil(v / round_to) * round_to))) for v in raw[1:-1]}
    return sorted(snapped | {full, max(1, min(full, low))})


def onnx_for_layer(spec: LayerSpec, cin: int, cout: int, batch: int, *, seed: int = 0) -> bytes:
    """A one-layer ONNX graph of ``spec`` at ``cin`` -> ``cout`` channels (random weights)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    if spec.kind == "linear":
        w = numpy_helper.from_array(rng.standard_normal((cin, cout)).astype(np.float32) * 0.01, "W")
        b = numpy_helper.from_array(np.zeros(cout, np.float32), "B")
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, cin])
        nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["y"], name="layer")]
    else:
        groups = cout if spec.tied else (spec.conv_groups if spec.conv_groups > 1 else 1)
        cin = cout if spec.tied else cin
        kh, kw = spec.kernel
        w = numpy_helper.from_array(
            rng.standard_normal((cout, max(cin // groups, 1), kh, kw)).astype(np.float32) * 0.01, "W"
        )
        b = numpy_helper.from_array(np.zeros(cout, np.float32), "B")
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, cin, *spec.input_hw])
        conv = helper.make_node(
            "Conv",
            ["x", "W", "B"],
            ["c"],
            name="layer",
            kernel_shape=[kh, kw],
            strides=list(spec.stride),
            pads=[spec.padding[0], spec.padding[1], spec.padding[0], spec.padding[1]],
            dilations=list(spec.dilation),
            group=groups,
        )
        nodes = [conv, helper.make_node("Relu", ["c"], ["y"], name="act")]
    y = helper.make_tensor_value_info(
        "y", TensorProto.FLOAT, [batch, cout, *out_hw(spec)] if spec.kind != "linear" else [batch, cout]
    )
    graph = helper.make_graph(nodes, "layer", [x], [y], [w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(onnx.ModelProto.SerializeToString(model))


def out_hw(spec: LayerSpec) -> list[int]:
    """Output height and width of a convolution layer."""
    return [
        (spec.input_hw[i] + 2 * spec.padding[i] - spec.dilation[i] * (spec.kernel[i] - 1) - 1) // spec.stride[i] + 1
        for i in (0, 1)
    ]


def _kernel_ms_per_run(trace: str) -> list[float]:
    """Per ``model_run`` event: the summed kernel time (ms) of its non-layout nodes."""
    events = json.loads(Path(trace).read_text())
    runs = sorted(
        (e["ts"], e["ts"] + e["dur"]) for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"
    )
    sums = [0.0] * len(runs)
    starts = [r[0] for r in runs]
    import bisect

    for e in events:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time"):
            continue
        if str((e.get("args") or {}).get("op_name", "")) in _LAYOUT_OPS:
            continue
        i = bisect.bisect_right(starts, e["ts"]) - 1
        if 0 <= i < len(runs) and e["ts"] <= runs[i][1]:
            sums[i] += e["dur"] / 1e3
    return sums


def measure_point(
    model_bytes: bytes, feed: Mapping[str, np.ndarray], *, threads: int, warmup: int, repeats: int, min_ms: float
) -> tuple[float, float]:
    """(median kernel ms, relative IQR) of one graph: ``warmup`` dropped runs, then at least ``repeats`` runs
    and ``min_ms`` of kernel time."""
    import onnxruntime as ort

    from cosep_deploy.backends.onnxruntime.runner import ort_session_options

    with tempfile.TemporaryDirectory(prefix="cosep-latency-") as tmp:
        opts = ort_session_options(threads)
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "p")
        sess = ort.InferenceSession(model_bytes, sess_options=opts, providers=["CPUExecutionProvider"])
        for _ in range(warmup):
            sess.run(None, dict(feed))
        n, start = 0, time.perf_counter()
        while n < repeats or ((time.perf_counter() - start) * 1e3 < min_ms and n < 50 * repeats):
            sess.run(None, dict(feed))
            n += 1
        times = _kernel_ms_per_run(sess.end_profiling())[warmup:]
        del sess
    med = statistics.median(times)
    q = np.percentile(times, [25, 75])
    return med, float((q[1] - q[0]) / med) if med > 0 else 0.0


def _feed(spec: LayerSpec, cin: int, cout: int, batch: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    if spec.kind == "linear":
        return {"x": rng.standard_normal((batch, cin), dtype=np.float32)}
    c = cout if spec.tied else cin
    return {"x": rng.standard_normal((batch, c, *spec.input_hw), dtype=np.float32)}


def _grids(
    layers: Sequence[LayerSpec], min_counts: Mapping[str, int], sizes: Mapping[str, int], round_to: int, points: int
) -> dict[str, tuple[LayerSpec, list[int], list[int], list[str]]]:
    """Per signature: one representative layer, the input and output grids (covering every layer of that
    shape at the groups' minimum counts) and the layers it stands for."""
    out: dict[str, tuple[LayerSpec, list[int], list[int], list[str]]] = {}
    lows: dict[str, list[int]] = {}
    for s in layers:
        cin, cout = s.widths(min_counts, sizes)
        sig = s.signature()
        low = lows.setdefault(sig, [s.in_channels, s.out_channels])
        low[0], low[1] = min(low[0], cin), min(low[1], cout)
        names = out[sig][3] if sig in out else []
        out[sig] = (s, [], [], [*names, s.name])
    result = {}
    for sig, (s, _, _, names) in out.items():
        in_grid = [] if s.tied else axis_grid(s.in_channels, lows[sig][0], round_to, points)
        result[sig] = (s, in_grid, axis_grid(s.out_channels, lows[sig][1], round_to, points), names)
    return result


@dataclasses.dataclass(frozen=True)
class _Sweep:
    """How each grid point is timed."""

    batch: int
    threads: int
    warmup: int
    repeats: int
    min_ms: float

    def entry(
        self, spec: LayerSpec, in_grid: list[int], out_grid: list[int], names: list[str], task: Any
    ) -> dict[str, Any]:
        """A table entry: the layer timed at every (input, output) grid point (a tied layer: one row)."""
        ms, iqr = [], []
        for cin in in_grid or [0]:
            row, row_iqr = [], []
            for cout in out_grid:
                m, r = measure_point(
                    onnx_for_layer(spec, cin, cout, self.batch),
                    _feed(spec, cin, cout, self.batch),
                    threads=self.threads,
                    warmup=self.warmup,
                    repeats=self.repeats,
                    min_ms=self.min_ms,
                )
                row.append(round(m, 5))
                row_iqr.append(round(r, 4))
                task.advance()
            ms.append(row)
            iqr.append(row_iqr)
        return {"kind": spec.kind, "in_grid": in_grid, "out_grid": out_grid, "ms": ms, "rel_iqr": iqr, "layers": names}


def build_table_ort(
    layers: Sequence[LayerSpec],
    key: TableKey,
    *,
    min_counts: Mapping[str, int],
    sizes: Mapping[str, int],
    round_to: int,
    points: int = 5,
    dense_ms: float | None = None,
    warmup: int = 3,
    repeats: int = 15,
    min_ms: float = 30.0,
    progress: Progress | None = None,
) -> LatencyTable:
    """Measure every layer shape of ``layers`` at its grid points; ``dense_ms`` (the whole dense model's
    measured time) gives the share of the model's time the table explains."""
    start = time.perf_counter()
    grids = _grids(layers, min_counts, sizes, round_to, points)
    total = sum(max(len(gi), 1) * len(go) for _, gi, go, _ in grids.values())
    sweep = _Sweep(key.batch, key.threads, warmup, repeats, min_ms)
    with resolve_progress(progress).task(f"latency table: {len(grids)} layer shapes", total=total) as task:
        entries = {sig: sweep.entry(spec, gi, go, names, task) for sig, (spec, gi, go, names) in grids.items()}
    noise = [r for e in entries.values() for row in e["rel_iqr"] for r in row]
    table = LatencyTable(
        key=dataclasses.asdict(key),
        entries=entries,
        whole_model={},
        noise=noise_summary(noise),
        seconds=round(time.perf_counter() - start, 2),
        source="onnxruntime profiler (kernel time, layout reorders excluded)",
        provenance=provenance(),
    )
    full = table.model_ms(layers, sizes, sizes)
    whole = {"dense_ms": dense_ms, "explained_ms": round(full, 4)}
    whole["explained_fraction"] = round(full / dense_ms, 4) if dense_ms else None
    return dataclasses.replace(table, whole_model=whole)


def whole_model_ms(onnx_path: str | Path, batch: int, threads: int, *, iterations: int = 20) -> float:
    """Median wall time (ms) of the whole model under the benchmark's session settings."""
    from cosep_deploy.backends.onnxruntime.runner import OnnxRuntimeRunner

    runner = OnnxRuntimeRunner(onnx_path, threads=threads)
    with runner:
        shape = [batch, *[int(d) for d in runner.input_shape()[1:]]]
        feed = {runner.info().input_names[0]: np.random.default_rng(0).standard_normal(shape, dtype=np.float32)}
        for _ in range(3):
            runner.infer(feed)
        times = [runner.time_once(feed).seconds for _ in range(iterations)]
    return 1e3 * statistics.median(times)
