"""TensorRT backend.

No GPU or TensorRT here. What runs for real: ONNX inspection, profile resolution, the capability checks and
build-path choice, the missing-dependency path and manifest/integrity checks. Builds and runs go through the
contract-faithful double of TensorRT and cuda-python (``trt_double.py``, ``cuda_double.py``: TensorRT's
documented contracts enforced, the engine computed by ONNX Runtime on the bytes in "device" memory), per release
8.5 to 11.x; the double's surface is checked against the ``tensorrt-stubs`` in ``test_trt_double.py``.
GPU-marked tests build and run a real engine and skip here.
"""

from __future__ import annotations

import dataclasses
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from cosep_deploy.backends.tensorrt.cuda import CudaError, CudaPython, check_cuda
from cosep_deploy.backends.tensorrt.engine import engine_from_onnx
from cosep_deploy.backends.tensorrt.plan import (
    OnnxSummary,
    TensorRTBuildConfig,
    TrtCapabilities,
    dla_refusal,
    parse_version,
    plan_build,
    resolve_profile,
    summarize_onnx,
    trt_capabilities,
)
from cosep_deploy.backends.tensorrt.runner import TensorRTRunner
from cosep_deploy.deps import is_available
from cosep_deploy.engines.manifest import manifest_path_for
from cosep_deploy.errors import (
    ConfigError,
    EngineBuildError,
    EngineLoadError,
    MissingDependencyError,
)
from cosep_deploy.targets import get_target
from tests.backends.trt_double import RELEASES, make_double
from tests.engines.fake_engines import DGPU, write_engine

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

HAS_TRT = is_available("tensorrt")


def _tiny_onnx(path: Path, kind: str = "fp32", batch: int | str = "batch") -> Path:
    """input [batch, 4] -> Relu -> output; fp16 adds casts (a mixed-precision export), qdq adds Q/DQ."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 4])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, 4])
    inits = []
    if kind == "fp16":
        nodes = [
            helper.make_node("Cast", ["input"], ["h"], to=TensorProto.FLOAT16),
            helper.make_node("Relu", ["h"], ["r"]),
            helper.make_node("Cast", ["r"], ["output"], to=TensorProto.FLOAT),
        ]
    elif kind == "qdq":
        inits = [
            helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]),
            helper.make_tensor("z", TensorProto.INT8, [], [0]),
        ]
        nodes = [
            helper.make_node("QuantizeLinear", ["input", "s", "z"], ["q"]),
            helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
            helper.make_node("Relu", ["d"], ["output"]),
        ]
    else:
        nodes = [helper.make_node("Relu", ["input"], ["output"])]
    graph = helper.make_graph(nodes, "tiny", [x], [y], initializer=inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


# ----------------------------------------------------------------------------------------------- ONNX + profile


def test_summarize_onnx_detects_precision_markers(tmp_path: Path) -> None:
    fp32 = summarize_onnx(_tiny_onnx(tmp_path / "a.onnx"))
    assert fp32 == OnnxSummary(inputs={"input": ("batch", 4)}, has_qdq=False, has_fp16=False)
    assert summarize_onnx(_tiny_onnx(tmp_path / "b.onnx", "fp16")).has_fp16
    qdq = summarize_onnx(_tiny_onnx(tmp_path / "c.onnx", "qdq"))
    assert qdq.has_qdq and not qdq.has_fp16
    (tmp_path / "bad.onnx").write_bytes(b"not a protobuf at all \x00\xff")
    with pytest.raises(EngineBuildError, match="cannot read ONNX"):
        summarize_onnx(tmp_path / "bad.onnx")


def test_resolve_profile_batch_and_explicit_shapes() -> None:
    inputs = {"input": ("batch", 3, 32, 32), "mask": (1, 10)}
    cfg = TensorRTBuildConfig(batch=(1, 8, 40))
    assert resolve_profile(cfg, inputs) == {"input": ((1, 3, 32, 32), (8, 3, 32, 32), (40, 3, 32, 32))}
    explicit = TensorRTBuildConfig(shapes={"input": ((1, 3, 32, 32), (2, 3, 32, 32), (4, 3, 32, 32))})
    assert resolve_profile(explicit, inputs)["input"][2] == (4, 3, 32, 32)
    assert resolve_profile(TensorRTBuildConfig(), {"x": (1, 4)}) == {}  # fully static: no profile
    with pytest.raises(ConfigError, match="pass batch"):
        resolve_profile(TensorRTBuildConfig(), inputs)
    with pytest.raises(ConfigError, match="dynamic dims"):
        resolve_profile(cfg, {"x": ("n", 3, "h", "w")})
    with pytest.raises(ConfigError, match="Did you mean 'input'"):
        resolve_profile(TensorRTBuildConfig(shapes={"inptu": ((1,), (1,), (1,))}), inputs)
    with pytest.raises(ConfigError, match="fixed in the ONNX"):
        resolve_profile(TensorRTBuildConfig(shapes={"input": ((1, 3, 32, 32), (2, 3, 32, 32), (4, 3, 64, 64))}), inputs)
    with pytest.raises(ConfigError, match="rank 4"):
        resolve_profile(TensorRTBuildConfig(shapes={"input": ((1, 3), (1, 3), (1, 3))}), inputs)


def test_build_config_validation_and_target_defaults() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'int8'"):
        TensorRTBuildConfig(precision="int4")
    with pytest.raises(ConfigError, match="0-5"):
        TensorRTBuildConfig(builder_optimization_level=6)
    with pytest.raises(ConfigError, match="min <= opt <= max"):
        TensorRTBuildConfig(batch=(8, 1, 40))
    with pytest.raises(ConfigError, match="DLA needs fp16 or int8"):
        TensorRTBuildConfig(precision="fp32", dla_core=0)
    with pytest.raises(ConfigError, match="cannot be combined with DLA"):
        TensorRTBuildConfig(dla_core=0, hardware_compatibility=True)
    cfg = TensorRTBuildConfig.for_target(get_target("jetson-orin-nano"), precision="int8")
    assert (cfg.precision, cfg.workspace_mib, cfg.batch, cfg.dla_core, cfg.target) == (
        "int8",
        1024,
        (1, 8, 40),
        None,
        "jetson-orin-nano",
    )
    assert "timing_cache" not in cfg.cache_options() and cfg.cache_options()["batch"] == (1, 8, 40)
    with pytest.raises(ConfigError, match="not TensorRT"):
        TensorRTBuildConfig.for_target(get_target("cpu-onnxruntime"))


# ---------------------------------------------------------------------------------- capability checks (fakes)


def _caps(monkeypatch: pytest.MonkeyPatch, generation: str) -> TrtCapabilities:
    """trt_capabilities() with the TensorRT double of ``generation`` ("8" is 8.6) installed as ``tensorrt``."""
    release = {"8": "8.6", "10": "10.13"}.get(generation, generation)
    monkeypatch.setitem(sys.modules, "tensorrt", make_double(release)[0])
    return trt_capabilities()


FP32 = OnnxSummary(inputs={"x": (1, 4)}, has_qdq=False, has_fp16=False)
FP16 = OnnxSummary(inputs={"x": (1, 4)}, has_qdq=False, has_fp16=True)
QDQ = OnnxSummary(inputs={"x": (1, 4)}, has_qdq=True, has_fp16=False)


def test_capabilities_per_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    c8, c10, c11 = (_caps(monkeypatch, g) for g in ("8", "10", "11"))
    assert (c8.version, c10.version, c11.version) == (RELEASES["8.6"], RELEASES["10.13"], RELEASES["11"])
    assert c10.release == (10, 13, 0, 35) and c8.optimization_level and not _caps(monkeypatch, "8.5").optimization_level
    assert (c8.strongly_typed, c8.weak_typing, c8.calibrators, c8.explicit_batch_flag) == (False, True, True, True)
    assert (c10.strongly_typed, c10.weak_typing, c10.calibrators, c10.explicit_batch_flag) == (True, True, True, False)
    assert (c11.strongly_typed, c11.weak_typing, c11.calibrators, c11.explicit_batch_flag) == (
        True,
        False,
        False,
        False,
    )


def test_plan_build_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    c8, c10, c11 = (_caps(monkeypatch, g) for g in ("8", "10", "11"))
    p = plan_build(c8, TensorRTBuildConfig(precision="fp16"), FP32)
    assert (p.strongly_typed, p.network_flags, p.builder_flags) == (False, ("EXPLICIT_BATCH",), ("FP16",))
    assert plan_build(c8, TensorRTBuildConfig(precision="int8"), QDQ).builder_flags == ("INT8", "FP16")
    p = plan_build(c10, TensorRTBuildConfig(precision="fp16"), FP16)
    assert (p.strongly_typed, p.network_flags, p.builder_flags) == (True, ("STRONGLY_TYPED",), ())
    p = plan_build(c10, TensorRTBuildConfig(precision="fp16", strongly_typed=False), FP32)
    assert (p.strongly_typed, p.builder_flags) == (False, ("FP16",))
    p = plan_build(c11, TensorRTBuildConfig(precision="int8", dla_core=0), QDQ)
    assert p.builder_flags == ("GPU_FALLBACK",)


def test_plan_build_refusals_say_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    c8, c10, c11 = (_caps(monkeypatch, g) for g in ("8", "10", "11"))
    for caps in (c8, c10, c11):
        with pytest.raises(EngineBuildError, match=r"no INT8 calibrators(.|\n)*export --precision int8"):
            plan_build(caps, TensorRTBuildConfig(precision="int8"), FP32)
    with pytest.raises(EngineBuildError, match="mixed-precision ONNX"):
        plan_build(c11, TensorRTBuildConfig(precision="fp16"), FP32)
    with pytest.raises(ConfigError, match="removed weak typing"):
        plan_build(c11, TensorRTBuildConfig(precision="fp16", strongly_typed=False), FP16)
    with pytest.raises(ConfigError, match="no strongly typed networks"):
        plan_build(c8, TensorRTBuildConfig(strongly_typed=True), FP16)
    no_hwc = dataclasses.replace(c10, hardware_compatibility=False)
    with pytest.raises(ConfigError, match="hardware-compatible"):
        plan_build(no_hwc, TensorRTBuildConfig(precision="fp16", hardware_compatibility=True), FP16)


# ------------------------------------------------------------------------------ no TensorRT: clear messages


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_engine_from_onnx_without_tensorrt_names_the_install(tmp_path: Path) -> None:
    onnx_file = _tiny_onnx(tmp_path / "m.onnx")
    with pytest.raises(MissingDependencyError) as info:
        engine_from_onnx(onnx_file, tmp_path / "m.engine", TensorRTBuildConfig(precision="fp32", batch=(1, 2, 4)))
    assert "cosep-deploy[tensorrt]" in str(info.value) and "JetPack" in str(info.value)
    assert not (tmp_path / "m.engine").exists()


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_capabilities_without_tensorrt_names_the_install() -> None:
    # here the tensorrt-stubs wheel leaves a code-less ``tensorrt`` namespace package: still "missing"
    with pytest.raises(MissingDependencyError, match=r"cosep-deploy\[tensorrt\]"):
        trt_capabilities()


def test_missing_onnx_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        engine_from_onnx(tmp_path / "absent.onnx", tmp_path / "m.engine", TensorRTBuildConfig())


def _write_engine(tmp_path: Path, *, version: str = "10.13.0.35", device: str = "Fake GPU") -> Path:
    engine = tmp_path / "m.engine"
    fields = {**DGPU, "onnx_file": "m.onnx", "precision": "fp32", "runtime_version": version, "device_name": device}
    write_engine(engine, b"FAKE-ENGINE" * 10, **fields)
    return engine


def test_runner_checks_files_before_tensorrt(tmp_path: Path) -> None:
    engine = _write_engine(tmp_path)
    engine.write_bytes(b"FAKE-ENGINE" * 5)  # truncated: refused before any TensorRT import
    with pytest.raises(EngineLoadError, match="truncated"), TensorRTRunner(engine):
        pass
    manifest_path_for(engine).unlink()
    with pytest.raises(EngineLoadError, match="no manifest"), TensorRTRunner(engine):
        pass


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_runner_without_tensorrt_names_the_install(tmp_path: Path) -> None:
    with (
        pytest.raises(MissingDependencyError, match=r"cosep-deploy\[tensorrt\]"),
        TensorRTRunner(_write_engine(tmp_path)),
    ):
        pass


def test_check_cuda_reads_cuda_python_error_tuples() -> None:
    rt = types.SimpleNamespace(
        cudaError_t=types.SimpleNamespace(cudaSuccess=0), cudaGetErrorString=lambda e: (0, b"out of memory")
    )
    assert check_cuda((0, 42), "cudaMalloc", rt) == 42
    assert check_cuda((0,), "cudaFree", rt) is None
    assert check_cuda((0, 1, 2), "x", rt) == (1, 2)
    with pytest.raises(CudaError, match=r"cudaMalloc failed.*out of memory"):
        check_cuda((2, None), "cudaMalloc", rt)


@pytest.mark.skipif(not is_available("cuda.bindings.runtime"), reason="needs cuda-python installed")
def test_real_cuda_python_without_a_driver_fails_clearly() -> None:
    from cosep_deploy.deps import require

    if HAS_TRT:
        pytest.skip("a GPU stack is installed here")
    api = CudaPython(require("cuda.bindings.runtime"))
    try:
        info = api.device(0)
    except CudaError as exc:  # the expected outcome on a machine without an NVIDIA driver
        assert "cudaGetDeviceCount" in str(exc)
    else:
        assert info.compute_capability  # there is a GPU after all: the call must then succeed


def test_release_gates_by_feature_and_full_version(monkeypatch: pytest.MonkeyPatch) -> None:
    c85 = _caps(monkeypatch, "8.5")
    with pytest.raises(ConfigError, match="no builder_optimization_level"):
        plan_build(c85, TensorRTBuildConfig(precision="fp16", builder_optimization_level=4), FP32)
    plan_build(c85, TensorRTBuildConfig(precision="fp16"), FP32)  # unset: fine on 8.5
    assert parse_version("10.3.0.30") == (10, 3, 0, 30) and parse_version("11.4.1") == (11, 4, 1)
    assert parse_version("10.10.0.31") > parse_version("10.9.0.34")  # not a string comparison


def test_dla_refused_where_the_release_cannot(monkeypatch: pytest.MonkeyPatch) -> None:
    dla_fp16 = TensorRTBuildConfig(precision="fp16", dla_core=0)
    dla_int8 = TensorRTBuildConfig(precision="int8", dla_core=0)
    c86, c103, c1013, c11 = (_caps(monkeypatch, r) for r in ("8.6", "10.3", "10.13", "11"))
    plan_build(c86, dla_fp16, FP32)  # 8.x: fp16 on DLA through the flag path
    with pytest.raises(ConfigError, match=r"8\.6\.1\.6 cannot run an explicitly quantized"):
        plan_build(c86, dla_int8, QDQ)
    plan_build(c103, dla_int8, QDQ)  # JetPack 6's 10.3 runs Q/DQ int8 on DLA
    with pytest.raises(ConfigError, match=r"no DLA support \(none after 10\.7"):
        plan_build(c1013, dla_fp16, FP16)
    assert dla_refusal(dataclasses.replace(c103, version="10.7.0.23"), FP16) is None
    assert dla_refusal(dataclasses.replace(c103, version="10.8.0.43"), FP16) is not None
    assert dla_refusal(c11, FP16) is None  # 11.4: DLA back (AGX Orin; num_DLA_cores decides)
    plan = plan_build(c103, dla_fp16, FP16)
    assert plan.strongly_typed and plan.builder_flags == ("GPU_FALLBACK",)  # never FP16 on a typed network


def test_dla_profiles_are_static() -> None:
    with pytest.raises(ConfigError, match="static shapes only"):
        TensorRTBuildConfig(precision="fp16", dla_core=0, batch=(1, 8, 40))
    cfg = TensorRTBuildConfig(precision="fp16", dla_core=0, batch=(8, 8, 8))
    assert resolve_profile(cfg, {"input": ("batch", 3, 8, 8)})["input"] == ((8, 3, 8, 8),) * 3
    explicit = TensorRTBuildConfig(precision="fp16", dla_core=0, shapes={"input": ((1, 4), (2, 4), (4, 4))})
    with pytest.raises(ConfigError, match="static shapes only"):
        resolve_profile(explicit, {"input": ("batch", 4)})
    orin = get_target("jetson-agx-orin")
    if orin.dla.use_dla:
        assert len(set(TensorRTBuildConfig.for_target(orin).batch or ())) == 1


# -------------------------------------------------------------------------------------------- real GPU tests


@pytest.mark.gpu
@pytest.mark.tensorrt
@pytest.mark.skipif(not HAS_TRT, reason="needs TensorRT and an NVIDIA GPU")
@pytest.mark.parametrize("cuda_graph", [False, True])
def test_real_build_and_run_matches_onnxruntime(tmp_path: Path, cuda_graph: bool) -> None:
    ort = pytest.importorskip("onnxruntime")
    onnx_file = _tiny_onnx(tmp_path / "m.onnx")
    manifest = engine_from_onnx(
        onnx_file, tmp_path / "m.engine", TensorRTBuildConfig(precision="fp32", batch=(1, 2, 4))
    )
    assert manifest.device_name != "unknown" and manifest.device_sm_count
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    expected = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with TensorRTRunner(tmp_path / "m.engine", cuda_graph=cuda_graph) as runner:
        np.testing.assert_allclose(runner.infer({"input": x})["output"], expected, rtol=1e-5, atol=1e-6)
        timed = runner.time_once({"input": x})
        assert not timed.includes_copies
