"""trtexec: version-appropriate command lines, version parsing, and parsers of its exports and summary.

No trtexec here: the samples below are hand-written in trtexec's formats (sampleReporting.cpp of TensorRT
8.6/10.x; field names as the TensorRT developer guide documents them) and the runner is tried on a stub
script. A GPU-marked test runs the real binary where there is one.
"""

from __future__ import annotations

import json
import math
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from cosep_deploy.backends.trtexec import command as trtexec
from cosep_deploy.backends.trtexec import parse as trtexec_parse
from cosep_deploy.backends.trtexec.command import (
    TrtexecConfig,
    find_trtexec,
    format_shape,
    run_trtexec,
    trtexec_command,
    trtexec_version,
)
from cosep_deploy.backends.trtexec.parse import (
    LayerTime,
    TrtexecVersion,
    compare_layer_profiles,
    format_number,
    parse_export_profile,
    parse_export_times,
    parse_layer_info,
    parse_trtexec_summary,
    parse_trtexec_version,
    summarize_ms,
)
from cosep_deploy.errors import BenchError, ConfigError, EngineBuildError, MissingDependencyError

SHAPE = {"input": (8, 3, 32, 32)}


def _build(**overrides: object) -> TrtexecConfig:
    fields: dict[str, object] = dict(
        onnx=Path("m.onnx"),
        save_engine=Path("m.engine"),
        precision="fp16",
        min_shapes={"input": (1, 3, 32, 32)},
        opt_shapes=SHAPE,
        max_shapes={"input": (40, 3, 32, 32)},
        shapes=SHAPE,
        workspace_mib=2048,
        timing_cache=Path("timing.cache"),
        builder_optimization_level=3,
        iterations=100,
        duration_s=10,
        warmup_ms=500,
        avg_runs=10,
        percentiles=(90, 95, 99),
        export_times=Path("t.json"),
        export_profile=Path("p.json"),
        export_layer_info=Path("l.json"),
    )
    fields.update(overrides)
    return TrtexecConfig(**fields)  # type: ignore[arg-type]


COMMON = [
    "--onnx=m.onnx",
    "--saveEngine=m.engine",
    "--minShapes=input:1x3x32x32",
    "--optShapes=input:8x3x32x32",
    "--maxShapes=input:40x3x32x32",
    "--memPoolSize=workspace:2048",
    "--timingCacheFile=timing.cache",
    "--builderOptimizationLevel=3",
    "--profilingVerbosity=detailed",
    "--shapes=input:8x3x32x32",
    "--iterations=100",
    "--duration=10",
    "--warmUp=500",
    "--avgRuns=10",
    "--percentile=90,95,99",
    "--exportTimes=t.json",
    "--exportProfile=p.json",
    "--exportLayerInfo=l.json",
    "--separateProfileRun",
]


def test_command_on_11x_has_no_precision_or_measurement_flags() -> None:
    for precision in ("fp32", "fp16", "int8"):
        cmd = trtexec_command(_build(precision=precision), version=(11, 4, 1))
        assert cmd[0] == "trtexec"
        assert sorted(cmd[1:]) == sorted(set(COMMON) - {"--separateProfileRun"})  # deprecated in 11
        assert not {"--fp16", "--int8", "--best", "--stronglyTyped", "--useCudaGraph"} & set(cmd)
        assert not any(a.startswith("--calib") for a in cmd)
    cmd = trtexec_command(_build(data_transfers=True), version=(11, 0, 0))
    assert "--includeDataTransfers" in cmd
    with pytest.raises(ConfigError, match="no weak typing"):
        trtexec_command(_build(strongly_typed=False), version=(11, 0, 0))
    with pytest.raises(ConfigError, match="CUDA graphs"):
        trtexec_command(_build(cuda_graph=False), version=(11, 0, 0))


def test_command_on_10x_is_strongly_typed_with_11x_measurement_defaults() -> None:
    cmd = trtexec_command(_build(precision="int8"), version=TrtexecVersion(10, 3, 0), executable="/x/trtexec")
    assert cmd[0] == "/x/trtexec"
    extra = sorted(set(cmd[1:]) - set(COMMON))
    assert extra == ["--noDataTransfers", "--stronglyTyped", "--useCudaGraph", "--useSpinWait"]
    assert "--int8" not in cmd and "--fp16" not in cmd
    weak = trtexec_command(_build(precision="int8", strongly_typed=False), version=(10, 3, 0))
    assert "--int8" in weak and "--fp16" in weak and "--stronglyTyped" not in weak
    copies = trtexec_command(_build(data_transfers=True, cuda_graph=False, spin_wait=False), version=(10, 3, 0))
    assert not {"--noDataTransfers", "--useCudaGraph", "--useSpinWait"} & set(copies)


def test_command_on_8x_uses_precision_flags() -> None:
    v86 = (8, 6, 1)
    extra = set(trtexec_command(_build(), version=v86)[1:]) - set(COMMON)
    assert extra == {"--fp16", "--useCudaGraph", "--noDataTransfers", "--useSpinWait"}
    int8 = trtexec_command(_build(precision="int8"), version=v86)
    assert "--int8" in int8 and "--fp16" in int8  # Q/DQ int8 with fp16 for the layers left unquantized
    assert "--fp16" not in trtexec_command(_build(precision="fp32"), version=v86)
    assert "--stronglyTyped" not in int8
    with pytest.raises(ConfigError, match="no --stronglyTyped"):
        trtexec_command(_build(strongly_typed=True), version=v86)
    with pytest.raises(ConfigError, match="--builderOptimizationLevel"):
        trtexec_command(_build(), version=(8, 5, 2))
    with pytest.raises(ConfigError, match="single --percentile"):
        trtexec_command(_build(builder_optimization_level=None), version=(8, 5, 2))
    ok = trtexec_command(_build(builder_optimization_level=None, percentiles=(99,)), version=(8, 5, 2))
    assert "--percentile=99" in ok


def test_command_for_dla_benchmark_only_and_skip_inference() -> None:
    bench = TrtexecConfig(load_engine=Path("m.engine"), shapes=SHAPE, dla_core=1, precision="fp16")
    cmd = trtexec_command(bench, version=(10, 3, 0))
    assert cmd[:2] == ["trtexec", "--loadEngine=m.engine"]
    assert "--useDLACore=1" in cmd and "--allowGPUFallback" in cmd
    assert not any(a.startswith(("--minShapes", "--memPoolSize", "--stronglyTyped")) for a in cmd)
    build_only = trtexec_command(_build(skip_inference=True, export_times=None), version=(10, 3, 0))
    assert "--skipInference" in build_only and "--useCudaGraph" not in build_only
    assert not any(a.startswith("--iterations") for a in build_only)


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        TrtexecConfig(precision="fp16")
    with pytest.raises(ConfigError, match="exactly one"):
        TrtexecConfig(onnx=Path("a.onnx"), load_engine=Path("a.engine"))
    with pytest.raises(ConfigError, match="Did you mean 'fp16'"):
        TrtexecConfig(onnx=Path("a.onnx"), precision="fp61")
    with pytest.raises(ConfigError, match="0-5"):
        TrtexecConfig(onnx=Path("a.onnx"), builder_optimization_level=7)


def test_parsers_stay_importable_from_trtexec() -> None:
    exported = set(trtexec_parse.__all__) - {"format_number"}
    assert exported <= set(trtexec.__all__)
    assert all(getattr(trtexec, name) is getattr(trtexec_parse, name) for name in exported)
    assert (format_number(10.0), format_number(2.5), format_number(99)) == ("10", "2.5", "99")


def test_format_shape_quotes_odd_names() -> None:
    assert format_shape({"a": (1, 3), "b:0": (2,)}) == "a:1x3,'b:0':2"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("&&&& RUNNING TensorRT.trtexec [TensorRT v100300] # trtexec --help", (10, 3, 0)),
        ("&&&& RUNNING TensorRT.trtexec [TensorRT v101300] # trtexec", (10, 13, 0)),
        ("&&&& RUNNING TensorRT.trtexec [TensorRT v110401] # trtexec", (11, 4, 1)),
        ("&&&& RUNNING TensorRT.trtexec [TensorRT v8601] # /usr/src/tensorrt/bin/trtexec", (8, 6, 1)),
        ("&&&& RUNNING TensorRT.trtexec [TensorRT v8502] # trtexec --onnx=a.onnx", (8, 5, 2)),
        ("[11/24/2026-10:00:00] [I] TensorRT version: 10.16.0", (10, 16, 0)),
    ],
)
def test_parse_version(text: str, expected: tuple[int, int, int]) -> None:
    assert parse_trtexec_version(text) == expected


def test_parse_version_failure() -> None:
    with pytest.raises(EngineBuildError, match="TensorRT version"):
        parse_trtexec_version("usage: something else")


# --exportTimes of trtexec 10.x with data transfers on: one object per iteration, all keys present
TIMES_10X = [
    {
        "startEnqMs": 0.0,
        "endEnqMs": 0.05,
        "startH2dMs": 0.0,
        "endH2dMs": 0.1,
        "startComputeMs": 0.1,
        "endComputeMs": 1.1,
        "startD2hMs": 1.1,
        "endD2hMs": 1.2,
        "h2dMs": 0.1,
        "computeMs": 1.0,
        "d2hMs": 0.1,
        "latencyMs": 1.2,
        "enqueueMs": 0.05,
    },
    {
        "startEnqMs": 2.0,
        "endEnqMs": 2.04,
        "startH2dMs": 2.0,
        "endH2dMs": 2.1,
        "startComputeMs": 2.1,
        "endComputeMs": 3.4,
        "startD2hMs": 3.4,
        "endD2hMs": 3.5,
        "h2dMs": 0.1,
        "computeMs": 1.3,
        "d2hMs": 0.1,
        "latencyMs": 1.5,
        "enqueueMs": 0.04,
    },
]
# an older/leaner variant (--noDataTransfers, no duration keys): durations come from start/end pairs only
TIMES_LEAN = [
    {"startEnqMs": 0.0, "endEnqMs": 0.02, "startComputeMs": 0.0, "endComputeMs": 0.5},
    {"startEnqMs": 1.0, "endEnqMs": 1.03, "startComputeMs": 1.0, "endComputeMs": 1.7},
]


def _write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_parse_export_times_full_and_lean(tmp_path: Path) -> None:
    times = parse_export_times(_write(tmp_path, "t.json", TIMES_10X))
    np.testing.assert_allclose(times.latency_ms, [1.2, 1.5])
    np.testing.assert_allclose(times.compute_ms, [1.0, 1.3])
    summary = times.summary()
    assert summary["latency"]["count"] == 2 and summary["latency"]["median"] == pytest.approx(1.35)
    assert set(summary) == {"latency", "compute", "enqueue", "h2d", "d2h"}
    lean = parse_export_times(_write(tmp_path, "lean.json", TIMES_LEAN))
    np.testing.assert_allclose(lean.compute_ms, [0.5, 0.7])
    np.testing.assert_allclose(lean.latency_ms, [0.5, 0.7])  # no copies: latency is the compute time
    np.testing.assert_allclose(lean.enqueue_ms, [0.02, 0.03])
    assert set(lean.summary()) == {"latency", "compute", "enqueue"}  # phases not recorded are left out


def test_parse_export_times_rejects_other_files(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="--exportTimes"):
        parse_export_times(_write(tmp_path, "x.json", {"Layers": []}))
    with pytest.raises(BenchError, match="no latency"):
        parse_export_times(_write(tmp_path, "y.json", [{"foo": 1}]))
    (tmp_path / "z.json").write_text("[{")
    with pytest.raises(BenchError, match="not valid JSON"):
        parse_export_times(tmp_path / "z.json")


def test_summarize_ms() -> None:
    stats = summarize_ms([1.0, 2.0, 3.0, 4.0, float("nan")])
    assert stats["count"] == 4 and stats["mean"] == 2.5 and stats["min"] == 1.0 and stats["max"] == 4.0
    assert stats["p99"] == pytest.approx(3.97)
    assert summarize_ms([]) == {"count": 0.0}


# --exportProfile: [{"count": N}, per-layer objects]; 8.x has no medianMs, 10.x does
PROFILE_10X = [
    {"count": 100},
    {"name": "/conv1/Conv + /relu/Relu", "timeMs": 50.0, "averageMs": 0.5, "medianMs": 0.49, "percentage": 50.0},
    {
        "name": "Reformatting CopyNode for Input Tensor 0 to /layer1/Conv",
        "timeMs": 10.0,
        "averageMs": 0.1,
        "medianMs": 0.1,
        "percentage": 10.0,
    },
    {"name": "/layer1/Conv", "timeMs": 40.0, "averageMs": 0.4, "medianMs": 0.4, "percentage": 40.0},
]
PROFILE_8X = [
    {"count": 10},
    {"name": "/conv1/Conv + /relu/Relu", "timeMs": 3.0, "percentage": 60.0},
    {"name": "/layer1/Conv", "timeMs": 2.0, "averageMs": 0.2, "percentage": 40.0},
]


def test_parse_export_profile_variants(tmp_path: Path) -> None:
    layers = parse_export_profile(_write(tmp_path, "p10.json", PROFILE_10X))
    assert layers[0].name == "/conv1/Conv + /relu/Relu"
    assert layers[0].median_ms == 0.49 and layers[2].average_ms == 0.4 and layers[0].total_ms == 50.0
    old = parse_export_profile(_write(tmp_path, "p8.json", PROFILE_8X))
    assert old[0].average_ms == pytest.approx(0.3)  # derived from timeMs / count
    assert old[0].median_ms is None
    nested = parse_export_profile(_write(tmp_path, "pn.json", [PROFILE_10X]))  # one list per profile
    assert len(nested) == 3
    with pytest.raises(BenchError, match="no per-layer"):
        parse_export_profile(_write(tmp_path, "pe.json", [{"count": 1}]))


# --exportLayerInfo with --profilingVerbosity=detailed (objects) and without (names only)
LAYERS_DETAILED = {
    "Layers": [
        {
            "Name": "Reformatting CopyNode for Input Tensor 0 to /conv1/Conv",
            "LayerType": "Reformat",
            "Inputs": [
                {
                    "Name": "input",
                    "Location": "Device",
                    "Dimensions": [1, 3, 32, 32],
                    "Format/Datatype": "Row major linear FP32",
                }
            ],
            "Outputs": [
                {
                    "Name": "input_reformatted",
                    "Location": "Device",
                    "Dimensions": [1, 3, 32, 32],
                    "Format/Datatype": "Channel major FP16 format where channel % 8 == 0",
                }
            ],
        },
        {
            "Name": "/conv1/Conv + /relu/Relu",
            "LayerType": "CaskConvolution",
            "Inputs": [
                {"Name": "input_reformatted", "Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}
            ],
            "Outputs": [{"Name": "x", "Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}],
            "ParameterType": "Convolution",
            "TacticName": "sm80_xmma_fprop_implicit_gemm_f16f16",
            "TacticValue": "0x1",
        },
    ],
    "Bindings": ["input", "output"],
}
LAYERS_NAMES = {"Layers": ["/conv1/Conv + /relu/Relu", "/fc/Gemm"], "Bindings": ["input", "output"]}


def test_parse_layer_info_variants(tmp_path: Path) -> None:
    info = parse_layer_info(_write(tmp_path, "l.json", LAYERS_DETAILED))
    assert info.detailed and info.bindings == ("input", "output")
    assert info.reformat_layers == ("Reformatting CopyNode for Input Tensor 0 to /conv1/Conv",)
    conv = info.layers[1]
    assert conv.layer_type == "CaskConvolution" and conv.tactic == "sm80_xmma_fprop_implicit_gemm_f16f16"
    assert conv.input_formats == ("Channel major FP16 format where channel % 8 == 0",)
    names = parse_layer_info(_write(tmp_path, "n.json", LAYERS_NAMES))
    assert not names.detailed and [layer.name for layer in names.layers] == LAYERS_NAMES["Layers"]
    bare = parse_layer_info(_write(tmp_path, "b.json", ["a", "b"]))  # a bare list of layers
    assert len(bare.layers) == 2 and bare.bindings == ()
    with pytest.raises(BenchError, match="exportLayerInfo"):
        parse_layer_info(_write(tmp_path, "bad.json", {"Bindings": []}))


def test_compare_layer_profiles_by_name_then_order() -> None:
    def lt(name: str, ms: float) -> LayerTime:
        return LayerTime(name=name, total_ms=ms * 10, average_ms=ms, median_ms=None, percentage=None)

    dense = [lt("conv1", 1.0), lt("conv2 + relu", 2.0), lt("fc", 0.5)]
    pruned = [lt("conv1", 0.5), lt("Reformatting CopyNode", 0.3), lt("fc", 0.4), lt("extra", 0.1)]
    rows = compare_layer_profiles(dense, pruned)
    assert [(r.name, r.matched_by) for r in rows] == [
        ("conv1", "name"),
        ("conv2 + relu | Reformatting CopyNode", "order"),
        ("fc", "name"),
        ("extra", ""),
    ]
    assert rows[0].delta_ms == -0.5 and rows[0].ratio == 0.5
    assert rows[3].dense_ms is None and rows[3].delta_ms is None and rows[3].ratio is None


# trtexec 10.x stdout (abridged), including the prose "Explanations" section that must not be parsed as numbers
SUMMARY_10X = """&&&& RUNNING TensorRT.trtexec [TensorRT v100300] # trtexec --onnx=m.onnx
[11/24/2026-10:00:00] [I] === Device Information ===
[11/24/2026-10:00:00] [I] Selected Device: Orin
[11/24/2026-10:00:00] [I] Compute Capability: 8.7
[11/24/2026-10:00:00] [I] TensorRT version: 10.3.0
[11/24/2026-10:00:20] [I] Engine built in 19.8312 sec.
[11/24/2026-10:00:31] [I] === Performance summary ===
[11/24/2026-10:00:31] [I] Throughput: 1523.45 qps
[11/24/2026-10:00:31] [I] Latency: min = 0.61 ms, max = 1.02 ms, mean = 0.65 ms, median = 0.64 ms, percentile(90%) = 0.68 ms, percentile(95%) = 0.7 ms, percentile(99%) = 0.81 ms
[11/24/2026-10:00:31] [I] Enqueue Time: min = 0.01 ms, max = 0.05 ms, mean = 0.02 ms, median = 0.02 ms, percentile(90%) = 0.03 ms, percentile(95%) = 0.03 ms, percentile(99%) = 0.04 ms
[11/24/2026-10:00:31] [I] H2D Latency: min = 0 ms, max = 0 ms, mean = 0 ms, median = 0 ms, percentile(90%) = 0 ms, percentile(95%) = 0 ms, percentile(99%) = 0 ms
[11/24/2026-10:00:31] [I] GPU Compute Time: min = 0.6 ms, max = 1.0 ms, mean = 0.64 ms, median = 0.63 ms, percentile(90%) = 0.67 ms, percentile(95%) = 0.69 ms, percentile(99%) = 0.8 ms
[11/24/2026-10:00:31] [I] D2H Latency: min = 0 ms, max = 0 ms, mean = 0 ms, median = 0 ms, percentile(90%) = 0 ms, percentile(95%) = 0 ms, percentile(99%) = 0 ms
[11/24/2026-10:00:31] [I] Total Host Walltime: 10.0012 s
[11/24/2026-10:00:31] [I] Total GPU Compute Time: 9.7531 s
[11/24/2026-10:00:31] [W] * GPU compute time is unstable, with coefficient of variance = 5.21%.
[11/24/2026-10:00:31] [W]   If not already in use, locking GPU clock frequency or adding --useSpinWait may improve the stability.
[11/24/2026-10:00:31] [I] === Explanations of the performance metrics ===
[11/24/2026-10:00:31] [I] Total Host Walltime: the host walltime from when the first query (after warmups) is enqueued to when the last query is completed.
[11/24/2026-10:00:31] [I] Latency: the summation of H2D Latency, GPU Compute Time, and D2H Latency.
&&&& PASSED TensorRT.trtexec [TensorRT v100300] # trtexec --onnx=m.onnx
"""  # noqa: E501
# trtexec 8.0-8.5 style percentile: "percentile = X ms at 99%"
SUMMARY_OLD = """[I] Throughput: 812 qps
[I] Latency: min = 1.1 ms, max = 2.5 ms, mean = 1.2 ms, median = 1.15 ms, percentile = 1.9 ms at 99%
&&&& PASSED TensorRT.trtexec [TensorRT v8502] # trtexec
"""


def test_parse_summary_10x() -> None:
    s = parse_trtexec_summary(SUMMARY_10X)
    assert s.throughput_qps == 1523.45
    assert s.latency == {"min": 0.61, "max": 1.02, "mean": 0.65, "median": 0.64, "p90": 0.68, "p95": 0.7, "p99": 0.81}
    assert s.gpu_compute["median"] == 0.63 and s.enqueue["p99"] == 0.04 and s.h2d["max"] == 0.0
    assert s.total_host_walltime_s == 10.0012 and s.total_gpu_compute_s == 9.7531
    assert (s.device_name, s.compute_capability, s.tensorrt_version) == ("Orin", "8.7", "10.3.0")
    assert s.engine_build_s == pytest.approx(19.8312)
    assert any("unstable" in w for w in s.warnings)


def test_parse_summary_old_percentile_and_banner_version() -> None:
    s = parse_trtexec_summary(SUMMARY_OLD)
    assert s.throughput_qps == 812 and s.latency["p99"] == 1.9 and s.tensorrt_version == "8.5.2"
    assert s.gpu_compute == {} and s.device_name is None and math.isfinite(s.latency["median"])


def _stub(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "trtexec"
    script.write_text(f"#!{sys.executable}\nimport sys\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_run_trtexec_success_and_log(tmp_path: Path) -> None:
    stub = _stub(tmp_path, f"print({SUMMARY_10X!r})")
    assert trtexec_version(stub) == (10, 3, 0)
    result = run_trtexec([stub, "--onnx=m.onnx"], log_path=tmp_path / "run.log")
    assert result.summary.throughput_qps == 1523.45
    assert "Performance summary" in (tmp_path / "run.log").read_text()


def test_run_trtexec_failure_shows_the_tail(tmp_path: Path) -> None:
    stub = _stub(
        tmp_path, "print('[E] Error[4]: input has no shape'); print('&&&& FAILED TensorRT.trtexec'); sys.exit(1)"
    )
    with pytest.raises(EngineBuildError, match=r"exit code 1(.|\n)*input has no shape"):
        run_trtexec([stub, "--onnx=m.onnx"])
    with pytest.raises(MissingDependencyError):
        run_trtexec([tmp_path / "no-such-trtexec"])


def test_find_trtexec_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stub = _stub(tmp_path, "print('[TensorRT v101300]')")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_trtexec() == stub
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    if find_trtexec() is None:  # no JetPack install at /usr/src/tensorrt here
        with pytest.raises(MissingDependencyError, match="ships with JetPack"):
            trtexec_version()


@pytest.mark.gpu
@pytest.mark.tensorrt
@pytest.mark.skipif(find_trtexec() is None, reason="needs trtexec (JetPack or NVIDIA's TensorRT packages)")
def test_real_trtexec_build_and_exports(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 4])
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["output"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m.onnx")
    version = trtexec_version()
    cfg = TrtexecConfig(
        onnx=tmp_path / "m.onnx",
        precision="fp32",
        min_shapes={"input": (1, 4)},
        opt_shapes={"input": (2, 4)},
        max_shapes={"input": (4, 4)},
        shapes={"input": (2, 4)},
        duration_s=1,
        warmup_ms=100,
        export_times=tmp_path / "t.json",
        export_profile=tmp_path / "p.json",
        export_layer_info=tmp_path / "l.json",
    )
    result = run_trtexec(trtexec_command(cfg, version=version, executable=find_trtexec() or "trtexec"))
    assert result.summary.throughput_qps and result.summary.throughput_qps > 0
    assert parse_export_times(tmp_path / "t.json").latency_ms.size > 0
    assert parse_export_profile(tmp_path / "p.json")
    assert parse_layer_info(tmp_path / "l.json").layers
