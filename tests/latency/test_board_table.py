"""A TensorRT target's table comes from the board (the bundle's sweep, brought back with ``collect``): here
it is read, checked against the target, and used open loop (nothing can be measured on this machine)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from cosep_deploy.errors import LatencyTableError
from cosep_deploy.latency.layers import LayerSpec, layer_specs
from cosep_deploy.latency.measure_ort import axis_grid
from cosep_deploy.latency.prune_latency import min_count, prune_to_latency, setup_groups
from cosep_deploy.latency.request import LatencyRequest
from cosep_deploy.latency.table import LatencyTable, TableKey
from cosep_deploy.models import ModelSpec, build_model
from cosep_deploy.prune import PruneConfig
from tests.latency.table_fixtures import stand_in_table

ROUND = 8  # jetson-agx-orin's fp16 alignment


def _macs_ms(spec: LayerSpec, cin: int, cout: int) -> float:
    """A stand-in for trtexec's per-layer average ms: proportional to the layer's MACs."""
    h, w = spec.input_hw
    per_out = (1 if spec.tied else cin) * spec.kernel[0] * spec.kernel[1]
    return 1e-6 * per_out * cout * h * w / (spec.stride[0] * spec.stride[1]) + 0.001


def _board_table(layers: list[LayerSpec], mins: dict[str, int], sizes: dict[str, int], key: TableKey) -> LatencyTable:
    entries = {}
    for s in layers:
        cin_low, cout_low = s.widths(mins, sizes)
        in_grid = [] if s.tied else axis_grid(s.in_channels, cin_low, ROUND, 4)
        out_grid = axis_grid(s.out_channels, cout_low, ROUND, 4)
        ms = [[_macs_ms(s, cin, cout) for cout in out_grid] for cin in (in_grid or [0])]
        entries[s.signature()] = {
            "kind": s.kind,
            "in_grid": in_grid,
            "out_grid": out_grid,
            "ms": ms,
            "rel_iqr": [[0.0] * len(out_grid) for _ in ms],
            "layers": [s.name],
        }
    return stand_in_table(key, entries, dense_ms=2.0, explained_ms=1.8, source="trtexec --exportProfile (stand-in)")


@pytest.fixture(scope="module")
def setup() -> tuple[torch.nn.Module, torch.Tensor, list[LayerSpec], dict[str, int], dict[str, int]]:
    model = build_model(ModelSpec(name="vgg16_cifar", num_classes=10, in_channels=1, image_size=8), seed=0).eval()
    example = torch.randn(2, 1, 8, 8)
    work, _, groups, _ = setup_groups(model, example, PruneConfig(method="l1", ratio=1.0, round_to=ROUND))
    sizes = {g.root: g.size for g in groups}
    mins = {g.root: min_count(g.size, 0.1, ROUND) for g in groups}
    return model, example, layer_specs(work, example, groups), mins, sizes


KEY = TableKey(
    target="jetson-agx-orin",
    backend="tensorrt",
    runtime_version="10.3.0",
    device="Orin (nvgpu) sm_87",
    precision="fp16",
    batch=1,
    threads=0,
)


def test_a_board_table_is_used_open_loop(tmp_path: Path, setup: tuple) -> None:
    model, example, layers, mins, sizes = setup
    path = _board_table(layers, mins, sizes, KEY).save(tmp_path / "orin.json")
    request = LatencyRequest(target="jetson-agx-orin", speedup=2.0, table=str(path))
    _, plan = prune_to_latency(
        model, [], example_inputs=example, config=PruneConfig(method="l1", ratio=1.0, round_to=ROUND), request=request
    )
    lat = plan.config["latency"]
    assert lat["table"]["source"] == "file" and lat["table"]["measurable"] is False
    (only,) = lat["rounds"]
    assert only["measured_speedup"] is None and only["predicted_speedup"] >= 2.0 - 1e-9
    assert plan.macs_ratio > 1.5  # the stand-in's time is MACs: a 2x time cut removes MACs
    assert all(g["n_kept"] % ROUND == 0 or g["n_kept"] == g["size"] for g in plan.groups)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"runtime_version": "7.1.3"}, "outside target 'jetson-agx-orin'"),
        ({"precision": "int8"}, "precision: the table has 'int8', this run needs 'fp16'"),
        ({"target": "jetson-orin-nano"}, "target: the table has 'jetson-orin-nano'"),
        ({"backend": "onnxruntime"}, "backend: the table has 'onnxruntime'"),
    ],
)
def test_a_board_table_for_another_target_is_refused(tmp_path: Path, setup: tuple, change: dict, needle: str) -> None:
    model, example, layers, mins, sizes = setup
    path = _board_table(layers, mins, sizes, dataclasses.replace(KEY, **change)).save(tmp_path / "t.json")
    request = LatencyRequest(target="jetson-agx-orin", speedup=2.0, table=str(path))
    with pytest.raises(LatencyTableError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        prune_to_latency(
            model,
            [],
            example_inputs=example,
            config=PruneConfig(method="l1", ratio=1.0, round_to=ROUND),
            request=request,
        )
