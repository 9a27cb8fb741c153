"""Per-layer profiles: ONNX Runtime's real profiler output on small real models, trtexec's exports (the
samples of tests/backends/test_trtexec.py), pairing of dense and pruned layers, and the layers.json artifact."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cosep_deploy.backends.onnxruntime.runner import ort_session_options
from cosep_deploy.bench.layer_profile import (
    CONV,
    DEPTHWISE,
    GEMM,
    GROUPED,
    LAYOUT,
    POINTWISE,
    POOL,
    UNKNOWN,
    LayerProfile,
    ProfiledLayer,
    layer_kind,
)
from cosep_deploy.bench.layer_sources import compare_trtexec_profiles, profile_onnxruntime
from cosep_deploy.bench.layer_tables import kind_table, layer_table, layers_summary
from cosep_deploy.bench.layers import LayersReport, compare_layer_profiles, normalise_layer_name
from cosep_deploy.errors import BenchError, ConfigError, CosepError, EngineLoadError
from cosep_deploy.export import onnx_from_model
from tests.backends.test_trtexec import LAYERS_DETAILED, PROFILE_8X, PROFILE_10X


class TinyNet(nn.Module):
    """Conv-BN-ReLU, a depthwise conv, a 1x1 conv, global pooling and a linear head; ``width`` channels."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.dw = nn.Conv2d(width, width, 3, padding=1, groups=width)
        self.pw = nn.Conv2d(width, width, 1)
        self.fc = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(x)))
        x = torch.relu(self.dw(x))
        return self.fc(self.pw(x).mean((2, 3)))


def export_tiny_pair(folder: Path) -> tuple[Path, Path]:
    """dense.onnx (32 channels) and pruned.onnx (the same network, 16 channels: what channel pruning leaves).
    Both widths are whole blocks of ORT's NCHWc layout on AVX2 (8) and AVX-512 (16), so both graphs are
    optimised alike and keep the same node names."""
    torch.manual_seed(0)
    sample = torch.randn(4, 3, 16, 16)
    paths = []
    for name, width in (("dense", 32), ("pruned", 16)):
        paths.append(folder / f"{name}.onnx")
        onnx_from_model(TinyNet(width).eval(), sample, paths[-1])
    return paths[0], paths[1]


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return export_tiny_pair(tmp_path_factory.mktemp("tiny"))


def _real_trace(model: Path, folder: Path, runs: int) -> Path:
    import onnxruntime as ort

    opts = ort_session_options(1)
    opts.enable_profiling = True
    opts.profile_file_prefix = str(folder / "trace")
    session = ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    for _ in range(runs):
        session.run(None, {"input": x})
    return Path(session.end_profiling())


def test_onnxruntime_trace_of_a_real_session(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    trace = _real_trace(tiny_pair[0], tmp_path, runs=7)
    events = json.loads(trace.read_text())
    kernels = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    assert kernels and all("op_name" in e["args"] and isinstance(e["dur"], int) for e in kernels)

    every = LayerProfile.from_onnxruntime_trace(trace)
    assert every.source == "onnxruntime" and every.iterations == 7 and every.run_ms is not None
    names = [layer.name for layer in every.layers]
    assert names == list(dict.fromkeys(e["name"][: -len("_kernel_time")] for e in kernels))  # execution order
    for layer in every.layers:
        assert layer.count == 7  # each node once per run
        durations = [e["dur"] for e in kernels if e["name"] == f"{layer.name}_kernel_time"]
        assert layer.mean_ms == pytest.approx(sum(durations) / 7 / 1e3)
        assert layer.median_ms == pytest.approx(float(np.median(durations)) / 1e3)
    assert sum(layer.share for layer in every.layers) == pytest.approx(1.0)
    kinds = {layer.kind for layer in every.layers}
    assert {CONV, DEPTHWISE, GEMM, POOL} <= kinds  # the depthwise conv is told apart by its weight shape
    assert all(layer.op_type for layer in every.layers)

    warm = LayerProfile.from_onnxruntime_trace(trace, skip_runs=2)  # warm-up runs left out
    assert warm.iterations == 5 and all(layer.count == 5 for layer in warm.layers)
    assert [layer.name for layer in warm.layers] == names
    assert LayerProfile.from_json(json.loads(json.dumps(warm.to_json()))) == warm


def test_onnxruntime_trace_errors(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    trace = _real_trace(tiny_pair[1], tmp_path, runs=2)
    with pytest.raises(BenchError, match="all left out as warm-up"):
        LayerProfile.from_onnxruntime_trace(trace, skip_runs=2)
    sessions_only = tmp_path / "s.json"
    sessions_only.write_text(json.dumps([e for e in json.loads(trace.read_text()) if e["cat"] == "Session"]))
    with pytest.raises(BenchError, match="no node events"):
        LayerProfile.from_onnxruntime_trace(sessions_only)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(BenchError, match="not valid JSON"):
        LayerProfile.from_onnxruntime_trace(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"Layers": []}))
    with pytest.raises(BenchError, match="not an ONNX Runtime profile"):
        LayerProfile.from_onnxruntime_trace(tmp_path / "other.json")


def test_profile_onnxruntime_dense_vs_pruned(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    dense, pruned = tiny_pair
    report = profile_onnxruntime(dense, pruned, batch=2, iterations=6, threads=1, warmup=2)
    assert report.settings["batch"] == 2 and report.settings["iterations"] == 6 and report.settings["threads"] == 1
    assert report.provenance["inputs"]["dense_sha256"] != report.provenance["inputs"]["pruned_sha256"]
    assert report.unmatched == {"dense": [], "pruned": []}
    assert {r["matched_by"] for r in report.rows} == {"name"}  # same network, same node names
    assert all(r["speedup"] == pytest.approx(r["dense_ms"] / r["pruned_ms"]) for r in report.rows if r["pruned_ms"])
    dense_p, pruned_p = (LayerProfile.from_json(p) for p in (report.dense, report.pruned))
    assert dense_p.iterations == pruned_p.iterations == 6
    assert report.statistic == "median" and report.totals["dense_ms"] == pytest.approx(dense_p.total_ms("median"))
    assert all(r["dense_ms"] == r["dense_median_ms"] and r["dense_mean_ms"] > 0 for r in report.rows)
    assert report.totals["matched_layers"] == len(report.rows)
    kinds = {k["kind"]: k for k in report.by_kind}
    assert {CONV, DEPTHWISE, GEMM} <= set(kinds)
    assert sum(k["dense_ms"] for k in report.by_kind) == pytest.approx(report.totals["dense_ms"])
    assert sum(k["dense_share"] for k in report.by_kind) == pytest.approx(1.0)
    top = report.top(3)
    assert len(top) == 3 and [r["dense_ms"] for r in top] == sorted((r["dense_ms"] for r in top), reverse=True)
    assert top[0]["dense_ms"] == max(r["dense_ms"] for r in report.rows)

    saved = report.save(tmp_path / "layers.json")
    assert LayersReport.load(saved) == report
    assert not list(tmp_path.glob(".layers.json.*"))  # written atomically, no temp file left
    table = layer_table(report.to_json(), 4)
    assert [row[0] for row in table] == ["1", "2", "3", "4"] and table[0][1] == top[0]["name"]
    assert [row[0] for row in kind_table(report.to_json())] == [k["kind"] for k in report.by_kind]
    assert "batch 2, iterations 6, threads 1" in layers_summary(report.to_json())


def test_profile_onnxruntime_bad_input(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(EngineLoadError, match="not found"):
        profile_onnxruntime(tiny_pair[0], tmp_path / "missing.onnx", iterations=1)
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(EngineLoadError, match="cannot load"):
        profile_onnxruntime(tiny_pair[0], tmp_path / "junk.onnx", iterations=1)
    with pytest.raises(ConfigError, match="iterations >= 1"):
        profile_onnxruntime(*tiny_pair, iterations=0)


def _layer(name: str, kind: str, ms: float, op: str | None = "Conv") -> ProfiledLayer:
    return ProfiledLayer(name=name, op_type=op, kind=kind, mean_ms=ms, median_ms=ms, share=0.0, count=10)


def _prof(*layers: ProfiledLayer, source: str = "onnxruntime") -> LayerProfile:
    return LayerProfile(source=source, layers=layers, iterations=10)


def test_pairing_by_name_then_normalised_name_then_kind_order() -> None:
    dense = _prof(
        _layer("conv1", CONV, 1.0),
        _layer("relu_1_nchwc", CONV, 2.0),
        _layer("ReorderOutput", LAYOUT, 0.1, "ReorderOutput"),
        _layer("dw", DEPTHWISE, 0.5),
        _layer("fc", GEMM, 0.4, "Gemm"),
    )
    pruned = _prof(
        _layer("conv1", CONV, 0.5),
        _layer("relu_1", CONV, 1.0),  # the pruned layer fell out of the NCHWc layout: another name
        _layer("ReorderOutput", LAYOUT, 0.1, "ReorderOutput"),
        _layer("ReorderOutput_token_8", LAYOUT, 0.05, "ReorderOutput"),  # an extra layout change
        _layer("head", GEMM, 0.2, "FusedGemm"),
    )
    report = compare_layer_profiles(dense, pruned)
    how = {r["name"]: r["matched_by"] for r in report.rows}
    assert how == {
        "conv1": "name",
        "relu_1_nchwc | relu_1": "normalised name",
        "ReorderOutput": "name",
        "dw": "dense only",
        "fc | head": "op-type order",
        "ReorderOutput_token_8": "pruned only",
    }
    assert [r["name"] for r in report.rows][-1] == "ReorderOutput_token_8"  # pruned-only rows come last
    assert report.unmatched == {"dense": ["dw"], "pruned": ["ReorderOutput_token_8"]}
    t = report.totals
    assert t["dense_ms"] == pytest.approx(4.0) and t["pruned_ms"] == pytest.approx(1.85)
    assert t["unmatched_dense_ms"] == pytest.approx(0.5) and t["unmatched_pruned_ms"] == pytest.approx(0.05)
    assert t["matched_layers"] == 4 and t["matched_speedup"] == pytest.approx(3.5 / 1.8)
    row = next(r for r in report.rows if r["name"] == "conv1")
    assert row["speedup"] == pytest.approx(2.0) and row["dense_share"] == pytest.approx(0.25)
    kinds = {k["kind"]: k for k in report.by_kind}
    assert report.by_kind[0]["kind"] == CONV and kinds[CONV]["speedup"] == pytest.approx(2.0)
    assert kinds[DEPTHWISE]["pruned_layers"] == 0 and kinds[DEPTHWISE]["speedup"] is None
    assert kinds[LAYOUT]["dense_layers"] == 1 and kinds[LAYOUT]["pruned_layers"] == 2
    assert top_names(report, 2) == ["relu_1_nchwc | relu_1", "conv1"]


def test_medians_keep_one_slow_run_from_dominating() -> None:
    slow_once = ProfiledLayer(name="a", op_type="Conv", kind=CONV, mean_ms=5.0, median_ms=1.0, share=1.0, count=10)
    steady = ProfiledLayer(name="a", op_type="Conv", kind=CONV, mean_ms=0.5, median_ms=0.5, share=1.0, count=10)
    report = compare_layer_profiles(_prof(slow_once), _prof(steady))
    assert report.statistic == "median" and report.rows[0]["speedup"] == pytest.approx(2.0)
    assert report.rows[0]["dense_mean_ms"] == 5.0 and "medians per iteration" in layers_summary(report.to_json())
    no_median = ProfiledLayer(name="a", op_type="Conv", kind=CONV, mean_ms=0.5, median_ms=None, share=1.0, count=10)
    mixed = compare_layer_profiles(_prof(slow_once), _prof(no_median))  # the same statistic on both sides
    assert mixed.statistic == "mean" and mixed.rows[0]["speedup"] == pytest.approx(10.0)


def top_names(report: LayersReport, n: int) -> list[str]:
    return [r["name"] for r in report.top(n)]


def test_pairing_leaves_ambiguous_layers_unpaired() -> None:
    # two dense convs and one pruned conv left: pairing by order would guess, so neither is paired
    dense = _prof(_layer("a_nchwc", CONV, 1.0), _layer("b", CONV, 1.0), _layer("c", CONV, 1.0))
    pruned = _prof(_layer("a", CONV, 0.5), _layer("x", CONV, 0.5), _layer("y", GEMM, 0.1, "Gemm"))
    report = compare_layer_profiles(dense, pruned)
    assert [(r["name"], r["matched_by"]) for r in report.rows] == [
        ("a_nchwc | a", "normalised name"),
        ("b", "dense only"),
        ("c", "dense only"),
        ("x", "pruned only"),
        ("y", "pruned only"),
    ]
    with pytest.raises(BenchError, match="cannot compare"):
        compare_layer_profiles(dense, _prof(source="trtexec"))


def _write(folder: Path, name: str, data: object) -> Path:
    path = folder / name
    path.write_text(json.dumps(data))
    return path


def test_trtexec_profiles_with_and_without_layer_info(tmp_path: Path) -> None:
    dense = LayerProfile.from_trtexec(
        _write(tmp_path, "p10.json", PROFILE_10X), _write(tmp_path, "l.json", LAYERS_DETAILED)
    )
    assert dense.source == "trtexec" and dense.iterations == 100
    assert [(layer.name, layer.kind, layer.op_type) for layer in dense.layers] == [
        ("/conv1/Conv + /relu/Relu", CONV, "CaskConvolution"),
        ("Reformatting CopyNode for Input Tensor 0 to /layer1/Conv", LAYOUT, None),  # not in the layer info
        ("/layer1/Conv", UNKNOWN, None),
    ]
    first = dense.layers[0]
    assert (first.mean_ms, first.median_ms, first.count, first.share) == (0.5, 0.49, 100, pytest.approx(0.5))
    old = LayerProfile.from_trtexec(_write(tmp_path, "p8.json", PROFILE_8X))
    assert old.layers[0].mean_ms == pytest.approx(0.3) and old.layers[0].median_ms is None
    assert old.iterations == 10 and {layer.kind for layer in old.layers} == {UNKNOWN}

    # the pruned engine: faster convolutions, no reformatting layer, /layer1/Conv depthwise per its layer info
    pruned_rows = [dict(r) for r in PROFILE_10X if r.get("name", "").startswith("/")]
    for r in pruned_rows:
        r["averageMs"], r["timeMs"], r["medianMs"] = r["averageMs"] / 2, r["timeMs"] / 2, r["medianMs"] / 2
    info = copy.deepcopy(LAYERS_DETAILED)
    info["Layers"].append(
        {
            "Name": "/layer1/Conv",
            "LayerType": "CaskConvolution",
            "Groups": 16,
            "OutMaps": 16,
            "Inputs": [{"Name": "x", "Dimensions": [1, 16, 8, 8], "Format/Datatype": "Row major linear FP32"}],
        }
    )
    info_file = _write(tmp_path, "l2.json", info)
    report = compare_trtexec_profiles(
        _write(tmp_path, "d.json", PROFILE_10X),
        _write(tmp_path, "p.json", [{"count": 100}, *pruned_rows]),
        dense_layer_info=info_file,
        pruned_layer_info=info_file,
    )
    assert report.source == "trtexec" and report.settings["layer_info"] is True and report.statistic == "median"
    assert report.rows[0]["dense_ms"] == 0.49 and report.rows[0]["dense_mean_ms"] == 0.5
    assert report.unmatched == {"dense": ["Reformatting CopyNode for Input Tensor 0 to /layer1/Conv"], "pruned": []}
    assert [r["speedup"] for r in report.rows if r["pruned_ms"]] == [pytest.approx(2.0), pytest.approx(2.0)]
    assert {k["kind"] for k in report.by_kind} == {CONV, DEPTHWISE, LAYOUT}
    assert LayersReport.load(report.save(tmp_path / "layers.json")) == report
    mean_only = compare_trtexec_profiles(tmp_path / "p8.json", tmp_path / "p8.json")  # 8.x: no medianMs
    assert mean_only.statistic == "mean" and mean_only.rows[0]["dense_ms"] == pytest.approx(0.3)
    with pytest.raises(ConfigError, match="both engines or for neither"):
        compare_trtexec_profiles(tmp_path / "d.json", tmp_path / "p.json", dense_layer_info=info_file)
    with pytest.raises(BenchError, match="not found"):
        compare_trtexec_profiles(tmp_path / "d.json", tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("op", "name", "extra", "kind"),
    [
        ("Conv", "c", {"channels": 16, "per_group": 16}, CONV),
        ("Conv", "c", {"channels": 16, "per_group": 1}, DEPTHWISE),
        ("Conv", "c", {"channels": 16, "per_group": 4}, GROUPED),
        ("FusedConv", "c", {}, CONV),
        ("CaskConvolution", "c", {"groups": 32, "channels": 32}, DEPTHWISE),
        ("CaskConvolution", "c", {"groups": 4, "channels": 32}, GROUPED),
        ("CaskConvolution", "c", {"groups": 1}, CONV),
        ("CaskGemmConvolution", "c", {}, CONV),
        ("FusedGemm", "g", {}, GEMM),
        ("MatMul", "g", {}, GEMM),
        ("CaskGemmMatrixMultiply", "g", {}, GEMM),
        ("ReorderInput", "r", {}, LAYOUT),
        ("Reformat", "r", {}, LAYOUT),
        (None, "Reformatting CopyNode for Input Tensor 0 to x", {}, LAYOUT),
        ("GlobalAveragePool", "p", {}, POOL),
        ("ReduceMean", "p", {}, POOL),
        ("Relu", "a", {}, POINTWISE),
        ("PointWiseV2", "a", {}, POINTWISE),
        ("Concat", "x", {}, "Concat"),
        (None, "x", {}, UNKNOWN),
    ],
)
def test_layer_kind(op: str | None, name: str, extra: dict[str, int], kind: str) -> None:
    assert layer_kind(op, name, **extra) == kind


def test_normalise_layer_name() -> None:
    assert normalise_layer_name("relu_1_nchwc") == normalise_layer_name("node_relu_1") == "relu_1"
    assert normalise_layer_name("ReorderOutput_token_8") == "reorderoutput"
    assert normalise_layer_name("/layer1/Conv + PWN(/relu/Relu)") == normalise_layer_name("/layer1/conv + /relu/relu")
    assert normalise_layer_name("conv1") != normalise_layer_name("conv2")


def test_artifact_schema_is_checked(tmp_path: Path) -> None:
    report = compare_layer_profiles(_prof(_layer("a", CONV, 1.0)), _prof(_layer("a", CONV, 0.5)))
    data = report.to_json()
    assert data["schema"] == "LayersReport" and data["schema_version"] == 1
    _write(tmp_path, "old.json", {**data, "schema_version": 99})
    with pytest.raises(CosepError, match="schema version 99"):
        LayersReport.load(tmp_path / "old.json")
    _write(tmp_path, "bench.json", {**data, "schema": "BenchReport"})
    with pytest.raises(CosepError, match="expected a LayersReport"):
        LayersReport.load(tmp_path / "bench.json")
