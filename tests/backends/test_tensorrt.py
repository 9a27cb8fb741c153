"""TensorRT backend.

No GPU or TensorRT here. What runs for real: ONNX inspection, profile resolution, the capability checks
and build-path choice (on fake ``tensorrt`` modules shaped like 8.6, 10.x and 11.x, see ``fake_trt.py``), the
missing-dependency path, manifest/integrity checks, and the build and runner *orchestration* against a fake
TensorRT module and a fake CUDA API that computes on host memory. mypy checks the production code's TensorRT
calls against the 10.13 type stubs; the names it cannot check (looked up by name because they differ between
releases) are checked against the stubs here. GPU-marked tests build and run a real engine and skip here.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import sys
import tomllib
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cosep_deploy.backends.base import TimedRun
from cosep_deploy.backends.tensorrt.build import (
    OnnxSummary,
    TensorRTBuildConfig,
    TensorRTRunner,
    TrtCapabilities,
    engine_from_onnx,
    plan_build,
    resolve_profile,
    summarize_onnx,
    trt_capabilities,
)
from cosep_deploy.backends.tensorrt.cuda import CudaError, CudaPython, check_cuda
from cosep_deploy.deps import is_available
from cosep_deploy.engines.manifest import EngineManifest, manifest_path_for
from cosep_deploy.errors import (
    ConfigError,
    EngineBuildError,
    EngineLoadError,
    MissingDependencyError,
    TargetMismatchError,
)
from cosep_deploy.targets import get_target
from tests.backends.fake_trt import FAKE_STATE, FakeCuda, make_fake_trt, reset_fake_state

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
    """trt_capabilities() with a fake TensorRT of ``generation`` installed as ``tensorrt``."""
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_trt(generation))
    return trt_capabilities()


FP32 = OnnxSummary(inputs={"x": (1, 4)}, has_qdq=False, has_fp16=False)
FP16 = OnnxSummary(inputs={"x": (1, 4)}, has_qdq=False, has_fp16=True)
QDQ = OnnxSummary(inputs={"x": (1, 4)}, has_qdq=True, has_fp16=False)


def test_capabilities_per_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    c8, c10, c11 = (_caps(monkeypatch, g) for g in ("8", "10", "11"))
    assert (c8.version, c10.version, c11.version) == ("8.6.1", "10.13.0.35", "11.4.1")
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
    engine.write_bytes(b"FAKE-ENGINE" * 10)
    from cosep_deploy.artifacts import sha256_file

    EngineManifest(
        engine_file=engine.name,
        engine_sha256=sha256_file(engine),
        engine_bytes=engine.stat().st_size,
        onnx_file="m.onnx",
        onnx_sha256="0" * 64,
        precision="fp32",
        target="dgpu-ampere-plus",
        backend="tensorrt",
        runtime="TensorRT",
        runtime_version=version,
        device_name=device,
        compute_capability="9.0",
    ).save(manifest_path_for(engine))
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


# ------------------------------------------------------------- fake TensorRT + fake CUDA: orchestration only


@pytest.fixture
def fake_trt(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A fake TensorRT 10.13, registered in sys.modules for the test."""
    reset_fake_state()
    trt = make_fake_trt("10")
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return trt


def _names(members: list[Any] | dict[Any, int]) -> list[str]:
    return [m.name for m in members]


def test_fake_build_sets_everything_and_writes_manifest(fake_trt: Any, tmp_path: Path) -> None:
    onnx_file = _tiny_onnx(tmp_path / "m.onnx", "fp16")
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"old")
    cfg = TensorRTBuildConfig(
        precision="fp16",
        workspace_mib=256,
        batch=(1, 2, 4),
        timing_cache=cache,
        builder_optimization_level=5,
        target="dgpu-ampere-plus",
    )
    messages: list[str] = []
    manifest = engine_from_onnx(onnx_file, tmp_path / "out" / "m.engine", cfg, progress=messages.append)
    config = FAKE_STATE["config"]
    assert FAKE_STATE["network_flags"] == 1 << 1  # STRONGLY_TYPED (1) only: no EXPLICIT_BATCH on 10.x
    assert config.flags_set == [] and config.pools == {fake_trt.MemoryPoolType.WORKSPACE: 256 << 20}
    assert _names(list(config.pools)) == ["WORKSPACE"]
    assert FAKE_STATE["profile"] == {"input": ((1, 4), (2, 4), (4, 4))}
    assert config.builder_optimization_level == 5 and config.profiling_verbosity.name == "DETAILED"
    assert config.hardware_compatibility_level is None and config.DLA_core == -1  # left at TensorRT's defaults
    assert cache.read_bytes() == b"old+tuned"  # loaded, then saved back
    assert FAKE_STATE["parsed"] == str(onnx_file)
    assert (tmp_path / "out" / "m.engine").read_bytes() == b"FAKE-ENGINE-" + bytes([1 << 1])
    assert EngineManifest.load(manifest_path_for(tmp_path / "out" / "m.engine")) == manifest
    assert (manifest.runtime_version, manifest.precision, manifest.target) == ("10.13.0.35", "fp16", "dgpu-ampere-plus")
    assert manifest.build_options["strongly_typed_network"] is True and manifest.device_name == "unknown"  # no GPU here
    assert any("building m.engine" in m for m in messages)


def test_fake_build_dla_and_flag_path(fake_trt: Any, tmp_path: Path) -> None:
    onnx_file = _tiny_onnx(tmp_path / "m.onnx", "qdq", batch=1)
    cfg = TensorRTBuildConfig(precision="int8", dla_core=1, strongly_typed=False)
    engine_from_onnx(onnx_file, tmp_path / "m.engine", cfg)
    config = FAKE_STATE["config"]
    assert _names(config.flags_set) == ["INT8", "FP16", "GPU_FALLBACK"]
    assert (config.default_device_type.name, config.DLA_core) == ("DLA", 1)
    assert config.profiles == []  # static ONNX: no optimization profile
    with pytest.raises(EngineBuildError, match="2 DLA core"):
        engine_from_onnx(onnx_file, tmp_path / "m.engine", TensorRTBuildConfig(precision="int8", dla_core=2))


@pytest.mark.parametrize(
    ("generation", "network_flags", "builder_flags"),
    [("8", 1 << 0, ["FP16"]), ("11", 1 << 1, [])],  # 8.x: EXPLICIT_BATCH (0) + FP16; 11.x: STRONGLY_TYPED (1)
)
def test_fake_build_per_generation(
    fake_trt: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    generation: str,
    network_flags: int,
    builder_flags: list[str],
) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_trt(generation))
    cfg = TensorRTBuildConfig(precision="fp16", hardware_compatibility=True)
    manifest = engine_from_onnx(_tiny_onnx(tmp_path / "m.onnx", "fp16", batch=1), tmp_path / "m.engine", cfg)
    config = FAKE_STATE["config"]
    assert FAKE_STATE["network_flags"] == network_flags
    assert _names(config.flags_set) == builder_flags
    assert config.hardware_compatibility_level.name == "AMPERE_PLUS"
    assert manifest.runtime_version == make_fake_trt(generation).__version__


def test_fake_build_replaces_a_foreign_timing_cache(fake_trt: Any, tmp_path: Path) -> None:
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"foreign")
    messages: list[str] = []
    cfg = TensorRTBuildConfig(precision="fp32", timing_cache=cache)
    engine_from_onnx(_tiny_onnx(tmp_path / "m.onnx", batch=1), tmp_path / "m.engine", cfg, progress=messages.append)
    assert cache.read_bytes() == b"+tuned"  # a fresh cache, saved
    assert any("another device" in m for m in messages)


def test_fake_build_failures_carry_tensorrt_messages(fake_trt: Any, tmp_path: Path) -> None:
    onnx_file = _tiny_onnx(tmp_path / "m.onnx", batch=1)
    cfg = TensorRTBuildConfig(precision="fp32")
    FAKE_STATE["parse_ok"] = False
    with pytest.raises(EngineBuildError, match="node 0: unsupported operator; node 1"):
        engine_from_onnx(onnx_file, tmp_path / "m.engine", cfg)
    FAKE_STATE["parse_ok"], FAKE_STATE["build_ok"] = True, False
    with pytest.raises(EngineBuildError, match="out of tactics"):
        engine_from_onnx(onnx_file, tmp_path / "m.engine", cfg)
    assert not (tmp_path / "m.engine").exists()


def test_fake_runner_infer_time_and_graphs(fake_trt: Any, tmp_path: Path) -> None:
    cuda: FakeCuda = FAKE_STATE["cuda"]
    engine = _write_engine(tmp_path)
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    with TensorRTRunner(engine, cuda=cuda) as runner:
        assert isinstance(runner, TensorRTRunner)
        info = runner.info()
        assert (info.backend, info.runtime_version, info.device) == ("tensorrt", "10.13.0.35", "Fake GPU")
        assert info.input_names == ("input",) and info.output_names == ("output",)
        assert runner.memory() == {"engine_file_bytes": engine.stat().st_size, "context_device_memory_bytes": 3 << 20}
        np.testing.assert_array_equal(runner.infer({"input": x})["output"], 2 * x)
        np.testing.assert_array_equal(runner.infer({"input": x[:1].astype(np.float64)})["output"], 2 * x[:1])
        assert runner.time_once({"input": x}) == TimedRun(0.0015, includes_copies=False)
        with pytest.raises(ConfigError, match=r"outside the engine's profile \(1, 4\) \.\. \(4, 4\)"):
            runner.infer({"input": np.zeros((5, 4), np.float32)})
        with pytest.raises(ConfigError, match="engine inputs are"):
            runner.infer({"x": x})
    assert cuda.mem == {}  # every buffer freed on exit
    with TensorRTRunner(engine, cuda=cuda, cuda_graph=True) as runner:
        for _ in range(3):
            np.testing.assert_array_equal(runner.infer({"input": x})["output"], 2 * x)
        assert (cuda.captures, cuda.launches) == (1, 3)  # captured once, replayed
        runner.time_once({"input": x[:1]})  # new shape: recaptured, outside the timed region
        assert cuda.captures == 2
    with pytest.raises(EngineLoadError, match="not active"):
        runner.infer({"input": x})


def test_fake_runner_refuses_engines_from_elsewhere(fake_trt: Any, tmp_path: Path) -> None:
    engine = _write_engine(tmp_path, device="Orin")
    mismatch = r"on Orin \(sm 9.0\); this system has .* on Fake GPU"
    with pytest.raises(TargetMismatchError, match=mismatch), TensorRTRunner(engine, cuda=FAKE_STATE["cuda"]):
        pass
    assert FAKE_STATE["runtimes"] == 0  # refused before deserialisation
    with TensorRTRunner(engine, cuda=FAKE_STATE["cuda"], check_target=False) as runner:
        assert runner.info().device == "Fake GPU"
    old = _write_engine(tmp_path, version="10.3.0.30")
    with (
        pytest.raises(TargetMismatchError, match=r"TensorRT 10\.3\.0\.30"),
        TensorRTRunner(old, cuda=FAKE_STATE["cuda"]),
    ):
        pass


# ------------------------------------------------------ names mypy cannot check (looked up by name) exist


def _stub_classes() -> dict[str, set[str]]:
    """Class name -> member names in the mypy-usable copy of the 10.13 stubs (tools/trt_typings.py)."""
    root = Path(__file__).resolve().parents[2]
    with (root / "pyproject.toml").open("rb") as fh:
        mypy_path = tomllib.load(fh)["tool"]["mypy"]["mypy_path"]
    stub = root / mypy_path / "tensorrt_bindings" / "tensorrt.pyi"
    if not stub.is_file():
        pytest.skip(f"{stub} missing: run tools/trt_typings.py (make venv)")
    classes: dict[str, set[str]] = {}
    for node in ast.parse(stub.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef):
            names = {n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
            names |= {n.target.id for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
            classes[node.name] = names
    return classes


def test_names_looked_up_by_name_exist_in_tensorrt_stubs(monkeypatch: pytest.MonkeyPatch) -> None:
    classes = _stub_classes()
    assert "STRONGLY_TYPED" in classes["NetworkDefinitionCreationFlag"]  # the parse found enum members
    # every flag name plan_build can hand to _flag_member, over generations, precisions and typing choices
    network: set[str] = set()
    builder: set[str] = set()
    both = OnnxSummary(inputs={"x": (1, 4)}, has_qdq=True, has_fp16=True)
    for generation in ("8", "10", "11"):
        caps = _caps(monkeypatch, generation)
        for precision in ("fp32", "fp16", "int8"):
            for typed in ("auto", True, False):
                config = TensorRTBuildConfig(
                    precision=precision, strongly_typed=typed, dla_core=None if precision == "fp32" else 0
                )
                try:
                    plan = plan_build(caps, config, both)
                except ConfigError:
                    continue  # that generation refuses that typing choice
                network.update(plan.network_flags)
                builder.update(plan.builder_flags)
    assert network == {"STRONGLY_TYPED", "EXPLICIT_BATCH"} and builder == {"FP16", "INT8", "GPU_FALLBACK"}
    assert network <= classes["NetworkDefinitionCreationFlag"]
    assert builder <= classes["BuilderFlag"]
    # the probes in trt_capabilities: enum members by name, module attributes with hasattr
    assert {"FP16"} <= classes["BuilderFlag"] and "__members__" in classes["BuilderFlag"]
    assert {"IInt8EntropyCalibrator2", "HardwareCompatibilityLevel"} <= set(classes)
    # the fake's enums (10.x shape) use only members the stubs have
    fake = make_fake_trt("10")
    for name, value in vars(fake).items():
        if isinstance(value, type) and issubclass(value, enum.Enum):
            assert set(value.__members__) <= classes[name], (name, set(value.__members__) - classes[name])


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
    assert manifest.device_name != "unknown"
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    expected = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with TensorRTRunner(tmp_path / "m.engine", cuda_graph=cuda_graph) as runner:
        np.testing.assert_allclose(runner.infer({"input": x})["output"], expected, rtol=1e-5, atol=1e-6)
        timed = runner.time_once({"input": x})
        assert not timed.includes_copies
