"""Per-layer times of a whole model from ONNX Runtime's profiler, mapped back to the table's layers: by shape
(NCHWc-padded channels included) in execution order, on hand-written nodes and on real pruned models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cosep_deploy.latency.layers import LayerSpec, layer_specs
from cosep_deploy.latency.profile_ort import NodeTime, match_nodes, node_times, profile_layers_ort

CONV1 = LayerSpec(
    name="b.conv1",
    kind="conv",
    in_channels=32,
    out_channels=24,
    kernel=(3, 3),
    padding=(1, 1),
    input_hw=(8, 8),
    out_groups={"g": 1.0},
)
DOWN = LayerSpec(name="b.down", kind="conv", in_channels=32, out_channels=64, kernel=(1, 1), input_hw=(8, 8))
DW = LayerSpec(
    name="dw", kind="depthwise", in_channels=24, out_channels=24, kernel=(3, 3), padding=(1, 1), input_hw=(8, 8),
    conv_groups=24, out_groups={"g": 1.0},
)  # fmt: skip
FC = LayerSpec(name="fc", kind="linear", in_channels=64, out_channels=10)


def _conv(name: str, x: tuple[int, ...], w: tuple[int, ...], y: tuple[int, ...], ms: float) -> NodeTime:
    return NodeTime(name, "Conv", ms, (x, w), (y,))


def test_nodes_map_by_shape_with_padded_channels_and_another_order() -> None:
    # the group keeps 20 of 24 channels: NCHWc pads 20 to 32 in the node's shapes; ORT runs the downsample
    # before conv1 (another topological order) and has a node no layer explains
    nodes = [
        NodeTime("ReorderInput", "ReorderInput", 0.01, ((1, 32, 8, 8),), ((1, 32, 8, 8),)),
        _conv("down_nchwc", (1, 32, 8, 8), (64, 32, 1, 1), (1, 64, 8, 8), 0.2),
        _conv("relu_nchwc", (1, 32, 8, 8), (32, 32, 3, 3), (1, 32, 8, 8), 0.5),
        _conv("dw_nchwc", (1, 32, 8, 8), (32, 1, 3, 3), (1, 32, 8, 8), 0.05),
        _conv("extra", (1, 32, 8, 8), (16, 32, 5, 5), (1, 16, 4, 4), 0.3),
        NodeTime("gemm", "Gemm", 0.02, ((1, 64), (10, 64)), ((1, 10),)),
    ]
    layer_ms, free, stray = match_nodes(nodes, [CONV1, DOWN, DW, FC], {"g": 20}, {"g": 24})
    assert layer_ms == {"b.down": 0.2, "b.conv1": 0.5, "dw": 0.05, "fc": 0.02}
    assert free == [] and stray == ["extra"]
    # at the dense width (24 -> padded 32) the same nodes still map; a 16-channel node would not be conv1's
    narrow = [_conv("n", (1, 32, 8, 8), (16, 32, 3, 3), (1, 16, 8, 8), 0.1)]
    assert match_nodes(narrow, [CONV1], {"g": 24}, {"g": 24}) == ({}, ["b.conv1"], ["n"])


def test_node_times_are_medians_over_the_timed_runs(tmp_path: Path) -> None:
    events = []
    for run, ts in enumerate((0, 1000, 2000, 3000)):
        events.append({"cat": "Session", "name": "model_run", "ts": ts, "dur": 900})
        shapes = {"input_type_shape": [{"float": [1, 8, 4, 4]}, {"float": [8, 8, 1, 1]}]}
        args = {"op_name": "Conv", **shapes, "output_type_shape": [{"float": [1, 8, 4, 4]}]}
        events.append({"cat": "Node", "name": "a_kernel_time", "ts": ts + 10, "dur": 100 * (run + 1), "args": args})
        events.append({"cat": "Node", "name": "a_fence_before", "ts": ts + 10, "dur": 0, "args": args})
    trace = tmp_path / "t.json"
    trace.write_text(json.dumps(events))
    (node,) = node_times(trace, skip_runs=1)  # runs 2..4: 0.2, 0.3, 0.4 ms
    assert node.name == "a" and node.op == "Conv" and node.ms == pytest.approx(0.3)
    assert node.inputs == ((1, 8, 4, 4), (8, 8, 1, 1)) and node.outputs == ((1, 8, 4, 4),)


@pytest.mark.parametrize(("name", "keep"), [("mobilenet_v2", 0.4), ("resnet50", 0.55), ("vgg16_bn", 0.3)])
def test_every_layer_of_a_real_pruned_model_is_measured(tmp_path: Path, name: str, keep: float) -> None:
    """Exported with the project's exporter, profiled under the benchmark's settings: every Conv2d/Linear
    layer of the dense and of a pruned model (counts off the NCHWc block) gets its own time."""
    from cosep_deploy.export import onnx_from_model
    from cosep_deploy.latency.prune_latency import pruned_copy, setup_groups
    from cosep_deploy.models import ModelSpec, build_model
    from cosep_deploy.prune import PruneConfig

    model = build_model(ModelSpec(name=name, num_classes=10, in_channels=3, image_size=32), seed=0).eval()
    example = torch.randn(2, 3, 32, 32)
    work, _, groups, _ = setup_groups(model, example, PruneConfig(round_to=4))
    layers = layer_specs(work, example, groups)
    sizes = {g.root: g.size for g in groups}
    counts = {g.root: max(4, round(g.size * keep / 4) * 4) for g in groups}
    assert any(c % 16 for c in counts.values())  # the padded-channel path is exercised
    pruned, _ = pruned_copy(work, example, {g.root: list(range(g.size)) for g in groups}, counts)
    for label, net, at in (("dense", work, sizes), ("pruned", pruned, counts)):
        path = tmp_path / f"{label}.onnx"
        onnx_from_model(net, example, path)
        times = profile_layers_ort(path, layers, at, sizes, batch=1, threads=1, runs=2, warmup=1)
        assert times.unmatched_layers == [] and times.unmatched_nodes == [], (label, times)
        assert set(times.layer_ms) == {s.name for s in layers}
        assert all(v > 0 for v in times.layer_ms.values()) and times.run_ms is not None
