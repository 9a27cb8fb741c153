"""Measuring layer times on ONNX Runtime: one-layer graphs, the profiler trace, grids, a whole table."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from cosep_deploy.latency.layers import LayerSpec, layer_specs
from cosep_deploy.latency.measure_ort import (
    _kernel_ms_per_run,
    axis_grid,
    build_table_ort,
    measure_point,
    onnx_for_layer,
)
from cosep_deploy.latency.table import TableKey

CONV = LayerSpec(name="c", kind="conv", in_channels=32, out_channels=48, kernel=(3, 3), padding=(1, 1), input_hw=(8, 8))
DW = LayerSpec(
    name="d",
    kind="depthwise",
    in_channels=32,
    out_channels=32,
    kernel=(3, 3),
    padding=(1, 1),
    stride=(2, 2),
    input_hw=(8, 8),
    conv_groups=32,
)
FC = LayerSpec(name="f", kind="linear", in_channels=64, out_channels=10)


@pytest.mark.parametrize(
    ("spec", "cin", "cout", "out_shape"),
    [
        (CONV, 16, 24, (2, 24, 8, 8)),
        (DW, 0, 16, (2, 16, 4, 4)),
        (FC, 40, 10, (2, 10)),
    ],
)
def test_one_layer_graphs_run_at_the_kept_widths(
    spec: LayerSpec, cin: int, cout: int, out_shape: tuple[int, ...]
) -> None:
    import onnx
    import onnxruntime as ort

    data = onnx_for_layer(spec, cin, cout, batch=2)
    onnx.checker.check_model(onnx.load_from_string(data))
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    shape = [int(d) for d in sess.get_inputs()[0].shape]
    (y,) = sess.run(None, {"x": np.zeros(shape, np.float32)})
    assert y.shape == out_shape


def test_profiler_trace_sums_kernels_per_run_without_layout_changes(tmp_path: Path) -> None:
    """ONNX Runtime's trace format: a "Session"/"model_run" event spans each run's "Node" events."""
    events = []
    for run, ts in enumerate((0, 1000)):
        events.append({"cat": "Session", "name": "model_run", "ts": ts, "dur": 500})
        events.append(
            {
                "cat": "Node",
                "name": "ReorderInput_kernel_time",
                "ts": ts + 1,
                "dur": 50,
                "args": {"op_name": "ReorderInput"},
            }
        )
        events.append(
            {"cat": "Node", "name": "y_nchwc_kernel_time", "ts": ts + 60, "dur": 300 + run, "args": {"op_name": "Conv"}}
        )
        events.append(
            {"cat": "Node", "name": "y_nchwc_fence_before", "ts": ts + 60, "dur": 0, "args": {"op_name": "Conv"}}
        )
    trace = tmp_path / "t.json"
    trace.write_text(json.dumps(events))
    assert _kernel_ms_per_run(str(trace)) == [0.3, 0.301]


def test_measure_point_on_a_real_session() -> None:
    med, iqr = measure_point(
        onnx_for_layer(CONV, 32, 48, batch=1),
        {"x": np.zeros((1, 32, 8, 8), np.float32)},
        threads=1,
        warmup=2,
        repeats=5,
        min_ms=0.0,
    )
    assert med > 0 and iqr >= 0


def test_axis_grid() -> None:
    assert axis_grid(64, 16, 16, 5) == [16, 32, 48, 64]
    assert axis_grid(100, 10, 8, 5) == [10, 40, 56, 80, 100]  # the ends exact, the inside aligned
    assert axis_grid(64, 64, 16, 5) == [64]  # an unpruned side: the dense width only
    assert all(g % 8 == 0 or g in (10, 100) for g in axis_grid(100, 10, 8, 9))


def test_table_of_a_small_model_covers_every_layer_shape() -> None:
    from cosep_deploy.latency.prune_latency import min_count, setup_groups
    from cosep_deploy.models import ModelSpec, build_model
    from cosep_deploy.prune import PruneConfig

    model = build_model(ModelSpec(name="resnet20", num_classes=10, in_channels=1, image_size=8), seed=0)
    example = torch.randn(2, 1, 8, 8)
    work, _, groups, _ = setup_groups(model.eval(), example, PruneConfig(round_to=8))
    layers = layer_specs(work, example, groups)
    sizes = {g.root: g.size for g in groups}
    mins = {g.root: min_count(g.size, 0.25, 8) for g in groups}
    key = TableKey(
        target="cpu-onnxruntime",
        backend="onnxruntime",
        runtime_version="x",
        device="y",
        precision="fp32",
        batch=1,
        threads=1,
    )
    table = build_table_ort(
        layers, key, min_counts=mins, sizes=sizes, round_to=8, points=3, dense_ms=1.0, warmup=1, repeats=3, min_ms=0.0
    )
    assert set(table.entries) == {s.signature() for s in layers}
    assert table.key == dataclasses.asdict(key)
    assert sorted(n for e in table.entries.values() for n in e["layers"]) == sorted(s.name for s in layers)
    for e in table.entries.values():
        assert len(e["ms"]) == max(len(e["in_grid"]), 1) and all(len(r) == len(e["out_grid"]) for r in e["ms"])
        assert all(v > 0 for r in e["ms"] for v in r)
    assert table.whole_model["explained_ms"] == pytest.approx(table.model_ms(layers, sizes, sizes), rel=1e-3)
    assert table.whole_model["explained_fraction"] == pytest.approx(table.whole_model["explained_ms"], rel=1e-3)
    assert table.noise["points"] == sum(max(len(e["in_grid"]), 1) * len(e["out_grid"]) for e in table.entries.values())
