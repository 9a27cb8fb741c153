"""CoSeP channel order and coverage curves; the latency table format, interpolation and refusals."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from cosep_deploy.errors import LatencyTableError
from cosep_deploy.latency.layers import LayerSpec
from cosep_deploy.latency.order import cosep_order, coverage_curve
from cosep_deploy.latency.table import LatencyTable, TableKey, interpolate, load_table
from tests.latency.table_fixtures import stand_in_table


def _clustered_distances() -> np.ndarray:
    """Six channels in three tight pairs: {0,1}, {2,3}, {4,5}."""
    pts = np.array([0.0, 0.1, 5.0, 5.1, 10.0, 10.1])
    return np.abs(pts[:, None] - pts[None, :])


def test_order_puts_representatives_first_then_covers_clusters_before_duplicates() -> None:
    d = _clustered_distances()
    norms = np.array([1.0, 2.0, 1.0, 1.0, 3.0, 1.0])
    order = cosep_order(d, [1, 4], norms)
    assert sorted(order) == list(range(6))
    assert order[:2] == [4, 1]  # representatives first, the highest-L1 one leading
    assert order[2] in (2, 3)  # the uncovered middle cluster before the duplicates of kept channels
    curve = coverage_curve(d, order)
    assert curve[0] == 0 and curve[-1] == pytest.approx(1.0)
    assert np.all(np.diff(curve) >= -1e-12)
    assert curve[3] > 0.95  # one channel per cluster keeps nearly all separability


def test_coverage_of_identical_profiles_falls_back_to_the_kept_fraction() -> None:
    curve = coverage_curve(np.zeros((4, 4)), [0, 1, 2, 3])
    assert list(curve) == [0, 0.25, 0.5, 0.75, 1.0]


def test_interpolation() -> None:
    assert interpolate([16, 32, 64], [1.0, 2.0, 4.0], 48) == pytest.approx(3.0)
    assert interpolate([16, 32], [1.0, 2.0], 8) == pytest.approx(0.5)  # linear extrapolation below
    assert interpolate([16, 32], [1.0, 2.0], -100) == 0.0  # never negative
    assert interpolate([64], [5.0], 3) == 5.0


KEY = TableKey(
    target="cpu-onnxruntime",
    backend="onnxruntime",
    runtime_version="1.31.1",
    device="cpu X [avx2]",
    precision="fp32",
    batch=1,
    threads=2,
)
LAYER = LayerSpec(name="c", kind="conv", in_channels=32, out_channels=64, kernel=(3, 3), input_hw=(8, 8))
DW = LayerSpec(name="dw", kind="depthwise", in_channels=64, out_channels=64, kernel=(3, 3), input_hw=(8, 8))


def _table() -> LatencyTable:
    entries = {
        LAYER.signature(): {
            "kind": "conv",
            "in_grid": [16, 32],
            "out_grid": [32, 64],
            "ms": [[1.0, 2.0], [2.0, 4.0]],
            "rel_iqr": [[0.01, 0.01], [0.01, 0.01]],
            "layers": ["c"],
        },
        DW.signature(): {
            "kind": "depthwise",
            "in_grid": [],
            "out_grid": [32, 64],
            "ms": [[0.5, 1.0]],
            "rel_iqr": [[0.0, 0.0]],
            "layers": ["dw"],
        },
    }
    return stand_in_table(KEY, entries, dense_ms=6.0, explained_ms=5.0, source="test")


def test_table_lookup_and_group_widths() -> None:
    table = _table()
    assert table.layer_ms(LAYER, 24, 48) == pytest.approx(2.25)  # bilinear
    assert table.layer_ms(DW, 0, 48) == pytest.approx(0.75)  # tied: the output width only
    spec = dataclasses.replace(LAYER, in_groups={"g1": 1.0}, out_groups={"g2": 1.0})
    assert spec.widths({"g1": 16, "g2": 32}, {"g1": 32, "g2": 64}) == (16, 32)
    assert table.model_ms([spec], {"g1": 16, "g2": 32}, {"g1": 32, "g2": 64}) == pytest.approx(1.0)


def test_table_round_trip_and_refusals(tmp_path: Path) -> None:
    path = _table().save(tmp_path / "t.json")
    assert load_table(path, KEY, [LAYER, DW]).entries == _table().entries
    other = dataclasses.replace(KEY, device="another CPU [neon]")
    with pytest.raises(LatencyTableError, match=r"another device or runtime \(device: the table has .*rebuild"):
        load_table(path, other, [LAYER])
    with pytest.raises(LatencyTableError, match="batch: the table has 1, this run needs 8"):
        load_table(path, dataclasses.replace(KEY, batch=8), [LAYER])
    new_layer = dataclasses.replace(LAYER, input_hw=(16, 16))
    with pytest.raises(LatencyTableError, match="stale: it has no times for 1 layer shape"):
        load_table(path, KEY, [LAYER, new_layer])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": "BenchReport"}))
    with pytest.raises(LatencyTableError, match="is not a latency table"):
        load_table(bad, KEY, [LAYER])
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"schema": "LatencyTable", "schema_version": 1, "key": {}}))
    with pytest.raises(LatencyTableError, match="unreadable"):
        load_table(broken, KEY, [LAYER])
