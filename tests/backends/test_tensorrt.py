"""TensorRT backend.

No GPU or TensorRT here. What runs for real: ONNX inspection, profile resolution, the capability checks
and build-path choice (on fake ``tensorrt`` namespaces shaped like 8.6, 10.x and 11.x), the missing-dependency
path, manifest/integrity checks, and the build and runner *orchestration* against a fake TensorRT module and a
fake CUDA API that computes on host memory. The fakes' members are checked against the 10.13 type stubs so
they cannot drift into calls TensorRT does not have. GPU-marked tests build and run a real engine and skip here.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cosep_deploy.backends.base import TimedRun
from cosep_deploy.backends.cuda_mem import CudaError, CudaPython, DeviceInfo, check_cuda
from cosep_deploy.backends.tensorrt import (
    OnnxSummary,
    TensorRTBuildConfig,
    TensorRTRunner,
    engine_from_onnx,
    plan_build,
    resolve_profile,
    summarize_onnx,
    trt_capabilities,
)
from cosep_deploy.build.manifest import EngineManifest, manifest_path_for
from cosep_deploy.deps import is_available
from cosep_deploy.errors import (
    ConfigError,
    EngineBuildError,
    EngineLoadError,
    MissingDependencyError,
    TargetMismatchError,
)
from cosep_deploy.targets import get_target

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
        "int8", 1024, (1, 8, 40), None, "jetson-orin-nano"
    )  # fmt: skip
    assert "timing_cache" not in cfg.cache_options() and cfg.cache_options()["batch"] == (1, 8, 40)
    with pytest.raises(ConfigError, match="not TensorRT"):
        TensorRTBuildConfig.for_target(get_target("cpu-onnxruntime"))


# ---------------------------------------------------------------------------------- capability checks (fakes)


def _fake_caps_ns(generation: str) -> Any:
    """Just the attributes capability checks look at, shaped like TensorRT 8.6, 10.x or 11.x."""
    ndcf = {"8": {"EXPLICIT_BATCH": 0}, "10": {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 5}, "11": {"STRONGLY_TYPED": 5}}
    flags = {"FP16": 0, "INT8": 1, "GPU_FALLBACK": 3} if generation != "11" else {"GPU_FALLBACK": 3}
    ns = types.SimpleNamespace(
        __version__={"8": "8.6.1", "10": "10.3.0", "11": "11.4.1"}[generation],
        NetworkDefinitionCreationFlag=types.SimpleNamespace(**ndcf[generation]),
        BuilderFlag=types.SimpleNamespace(**flags),
        HardwareCompatibilityLevel=types.SimpleNamespace(AMPERE_PLUS=1),
    )
    if generation != "11":
        ns.IInt8EntropyCalibrator2 = object
    return ns


FP32 = OnnxSummary(inputs={"x": (1, 4)}, has_qdq=False, has_fp16=False)
FP16 = OnnxSummary(inputs={"x": (1, 4)}, has_qdq=False, has_fp16=True)
QDQ = OnnxSummary(inputs={"x": (1, 4)}, has_qdq=True, has_fp16=False)


def test_capabilities_per_generation() -> None:
    c8, c10, c11 = (trt_capabilities(_fake_caps_ns(g)) for g in ("8", "10", "11"))
    assert (c8.strongly_typed, c8.weak_typing, c8.calibrators, c8.explicit_batch_flag) == (False, True, True, True)
    assert (c10.strongly_typed, c10.weak_typing, c10.calibrators, c10.explicit_batch_flag) == (True, True, True, False)
    assert (c11.strongly_typed, c11.weak_typing, c11.calibrators, c11.explicit_batch_flag) == (
        True,
        False,
        False,
        False,
    )


def test_plan_build_paths() -> None:
    c8, c10, c11 = (trt_capabilities(_fake_caps_ns(g)) for g in ("8", "10", "11"))
    p = plan_build(c8, TensorRTBuildConfig(precision="fp16"), FP32)
    assert (p.strongly_typed, p.network_flags, p.builder_flags) == (False, ("EXPLICIT_BATCH",), ("FP16",))
    assert plan_build(c8, TensorRTBuildConfig(precision="int8"), QDQ).builder_flags == ("INT8", "FP16")
    p = plan_build(c10, TensorRTBuildConfig(precision="fp16"), FP16)
    assert (p.strongly_typed, p.network_flags, p.builder_flags) == (True, ("STRONGLY_TYPED",), ())
    p = plan_build(c10, TensorRTBuildConfig(precision="fp16", strongly_typed=False), FP32)
    assert (p.strongly_typed, p.builder_flags) == (False, ("FP16",))
    p = plan_build(c11, TensorRTBuildConfig(precision="int8", dla_core=0), QDQ)
    assert p.builder_flags == ("GPU_FALLBACK",)


def test_plan_build_refusals_say_what_to_do() -> None:
    c8, c10, c11 = (trt_capabilities(_fake_caps_ns(g)) for g in ("8", "10", "11"))
    for caps in (c8, c10, c11):
        with pytest.raises(EngineBuildError, match=r"no INT8 calibrators(.|\n)*export --precision int8"):
            plan_build(caps, TensorRTBuildConfig(precision="int8"), FP32)
    with pytest.raises(EngineBuildError, match="mixed-precision ONNX"):
        plan_build(c11, TensorRTBuildConfig(precision="fp16"), FP32)
    with pytest.raises(ConfigError, match="removed weak typing"):
        plan_build(c11, TensorRTBuildConfig(precision="fp16", strongly_typed=False), FP16)
    with pytest.raises(ConfigError, match="no strongly typed networks"):
        plan_build(c8, TensorRTBuildConfig(strongly_typed=True), FP16)


# ------------------------------------------------------------------------------ no TensorRT: clear messages


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_engine_from_onnx_without_tensorrt_names_the_install(tmp_path: Path) -> None:
    onnx_file = _tiny_onnx(tmp_path / "m.onnx")
    with pytest.raises(MissingDependencyError) as info:
        engine_from_onnx(onnx_file, tmp_path / "m.engine", TensorRTBuildConfig(precision="fp32", batch=(1, 2, 4)))
    assert "cosep-deploy[tensorrt]" in str(info.value) and "JetPack" in str(info.value)
    assert not (tmp_path / "m.engine").exists()


def test_missing_onnx_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        engine_from_onnx(tmp_path / "absent.onnx", tmp_path / "m.engine", TensorRTBuildConfig())


def _write_engine(tmp_path: Path, *, version: str = "10.13.0.35", device: str = "Fake GPU") -> Path:
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"FAKE-ENGINE" * 10)
    from cosep_deploy.artifacts import sha256_file

    EngineManifest(
        engine_file=engine.name, engine_sha256=sha256_file(engine), engine_bytes=engine.stat().st_size,
        onnx_file="m.onnx", onnx_sha256="0" * 64, precision="fp32", target="dgpu-ampere-plus", backend="tensorrt",
        runtime="TensorRT", runtime_version=version, device_name=device, compute_capability="9.0",
    ).save(manifest_path_for(engine))  # fmt: skip
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


class FakeCuda:
    """CudaApi on host memory; captured work runs at graph launch, as with real stream capture."""

    name = "fake"
    supports_graphs = True

    def __init__(self, device: str = "Fake GPU") -> None:
        self.mem: dict[int, np.ndarray] = {}
        self.next_ptr, self.dev = 4096, device
        self.capturing: list[Any] | None = None
        self.launches = self.captures = 0

    def device(self, index: int) -> DeviceInfo:
        return DeviceInfo(self.dev, "9.0")

    def malloc(self, nbytes: int) -> int:
        self.next_ptr += 4096 + nbytes
        self.mem[self.next_ptr] = np.zeros(nbytes, np.uint8)
        return self.next_ptr

    def free(self, ptr: int) -> None:
        del self.mem[ptr]

    def copy_htod(self, ptr: int, host: np.ndarray, stream: Any) -> None:
        self.mem[ptr][: host.nbytes] = host.reshape(-1).view(np.uint8)

    def copy_dtoh(self, host: np.ndarray, ptr: int, stream: Any) -> None:
        host.reshape(-1).view(np.uint8)[:] = self.mem[ptr][: host.nbytes]

    def stream_create(self) -> Any:
        return "stream"

    def stream_handle(self, stream: Any) -> int:
        return 7

    def stream_sync(self, stream: Any) -> None:
        return None

    def stream_destroy(self, stream: Any) -> None:
        return None

    def event_create(self) -> Any:
        return object()

    def event_record(self, event: Any, stream: Any) -> None:
        return None

    def elapsed_ms(self, start: Any, end: Any) -> float:
        return 1.5

    def event_destroy(self, event: Any) -> None:
        return None

    def capture_begin(self, stream: Any) -> None:
        self.capturing = []

    def capture_end(self, stream: Any) -> Any:
        graph, self.capturing = self.capturing, None
        self.captures += 1
        return graph

    def graph_launch(self, graph: Any, stream: Any) -> None:
        self.launches += 1
        for work in graph:
            work()

    def graph_destroy(self, graph: Any) -> None:
        return None

    def close(self) -> None:
        return None


class FakeLogger:
    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

    def __init__(self) -> None:
        pass


class FakeNetwork:
    STUB = "INetworkDefinition"

    def __init__(self, flags: int) -> None:
        self.flags = flags


class FakeParser:
    STUB = "OnnxParser"

    def __init__(self, network: FakeNetwork, logger: Any) -> None:
        self.ok = FAKE_STATE["parse_ok"]

    def parse_from_file(self, model: str) -> bool:
        FAKE_STATE["parsed"] = model
        return self.ok

    @property
    def num_errors(self) -> int:
        return 0 if self.ok else 2

    def get_error(self, index: int) -> str:
        return f"node {index}: unsupported operator"


class FakeTimingCache:
    STUB = "ITimingCache"

    def __init__(self, data: bytes) -> None:
        self.data = data

    def serialize(self) -> bytes:
        return self.data + b"+tuned"


class FakeProfile:
    STUB = "IOptimizationProfile"

    def set_shape(self, input: str, min: Any, opt: Any, max: Any) -> None:
        FAKE_STATE["profile"][input] = (min, opt, max)


class FakeBuilderConfig:
    STUB = "IBuilderConfig"
    # the settings engine_from_onnx assigns (class level, so the stub check below sees them)
    builder_optimization_level = 3
    profiling_verbosity: Any = None
    default_device_type: Any = None
    hardware_compatibility_level: Any = None
    DLA_core = -1

    def __init__(self) -> None:
        FAKE_STATE["config"] = self
        self.flags_set: list[Any] = []
        self.pools: dict[Any, int] = {}
        self.profiles: list[Any] = []
        self.cache: FakeTimingCache | None = None

    def set_flag(self, flag: Any) -> None:
        self.flags_set.append(flag)

    def set_memory_pool_limit(self, pool: Any, pool_size: int) -> None:
        self.pools[pool] = pool_size

    def add_optimization_profile(self, profile: Any) -> int:
        self.profiles.append(profile)
        return 0

    def create_timing_cache(self, serialized_timing_cache: bytes) -> FakeTimingCache:
        return FakeTimingCache(serialized_timing_cache)

    def set_timing_cache(self, cache: FakeTimingCache, ignore_mismatch: bool) -> bool:
        if cache.data == b"foreign":  # what TensorRT does with another device's cache and ignore_mismatch=False
            return False
        self.cache = cache
        return True

    def get_timing_cache(self) -> FakeTimingCache:
        assert self.cache is not None
        return self.cache


class FakeBuilder:
    STUB = "Builder"

    def __init__(self, logger: Any) -> None:
        self.logger = logger

    @property
    def num_DLA_cores(self) -> int:
        return 2

    def create_network(self, flags: int = 0) -> FakeNetwork:
        FAKE_STATE["network_flags"] = flags
        return FakeNetwork(flags)

    def create_builder_config(self) -> FakeBuilderConfig:
        return FakeBuilderConfig()

    def create_optimization_profile(self) -> FakeProfile:
        return FakeProfile()

    def build_serialized_network(self, network: FakeNetwork, config: FakeBuilderConfig) -> bytes | None:
        if FAKE_STATE["build_ok"]:
            return b"FAKE-ENGINE-" + bytes([network.flags])
        self.logger.log(FakeLogger.ERROR, "Error Code 4: internal out of tactics")
        return None


class FakeContext:
    STUB = "IExecutionContext"

    def __init__(self, cuda: FakeCuda) -> None:
        self.cuda = cuda
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.addresses: dict[str, int] = {}

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        if not 1 <= shape[0] <= 4:
            return False
        self.shapes["input"] = self.shapes["output"] = tuple(shape)
        return True

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return self.shapes[name]

    def set_tensor_address(self, name: str, memory: int) -> bool:
        self.addresses[name] = memory
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        src, dst, n = self.addresses["input"], self.addresses["output"], int(np.prod(self.shapes["input"])) * 4

        def work() -> None:
            x = self.cuda.mem[src][:n].view(np.float32)
            self.cuda.mem[dst][:n] = (2 * x).view(np.uint8)

        if self.cuda.capturing is not None:
            self.cuda.capturing.append(work)
        else:
            work()
        return True


class FakeEngine:
    STUB = "ICudaEngine"

    def __init__(self, cuda: FakeCuda) -> None:
        self.cuda = cuda

    @property
    def num_io_tensors(self) -> int:
        return 2

    def get_tensor_name(self, index: int) -> str:
        return ["input", "output"][index]

    def get_tensor_mode(self, name: str) -> str:
        return "INPUT" if name == "input" else "OUTPUT"

    def get_tensor_dtype(self, name: str) -> str:
        return "FLOAT"

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[tuple[int, ...]]:
        return [(1, 4), (2, 4), (4, 4)]

    def create_execution_context(self) -> FakeContext:
        return FakeContext(self.cuda)


class FakeRuntime:
    STUB = "Runtime"

    def __init__(self, logger: Any) -> None:
        FAKE_STATE["runtimes"] += 1

    def deserialize_cuda_engine(self, serialized_engine: bytes) -> FakeEngine | None:
        return FakeEngine(FAKE_STATE["cuda"]) if serialized_engine.startswith(b"FAKE") else None


FAKE_STATE: dict[str, Any] = {}


@pytest.fixture
def fake_trt(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A module standing in for ``tensorrt`` 10.13, registered in sys.modules for the test."""
    FAKE_STATE.clear()
    FAKE_STATE.update(parse_ok=True, build_ok=True, profile={}, runtimes=0, cuda=FakeCuda())
    trt = types.ModuleType("tensorrt")
    trt.__file__ = "/fake/tensorrt/__init__.py"
    ns = types.SimpleNamespace
    attrs = {
        "__version__": "10.13.0.35",
        "ILogger": FakeLogger,
        "Builder": FakeBuilder,
        "OnnxParser": FakeParser,
        "Runtime": FakeRuntime,
        "NetworkDefinitionCreationFlag": ns(EXPLICIT_BATCH=0, STRONGLY_TYPED=5),
        "BuilderFlag": ns(FP16="FP16", INT8="INT8", GPU_FALLBACK="GPU_FALLBACK"),
        "MemoryPoolType": ns(WORKSPACE="WORKSPACE"),
        "ProfilingVerbosity": ns(DETAILED="DETAILED"),
        "DeviceType": ns(DLA="DLA", GPU="GPU"),
        "HardwareCompatibilityLevel": ns(AMPERE_PLUS="AMPERE_PLUS"),
        "TensorIOMode": ns(INPUT="INPUT", OUTPUT="OUTPUT"),
        "IInt8EntropyCalibrator2": object,
        "nptype": lambda dtype: np.float32,
    }
    for key, value in attrs.items():
        setattr(trt, key, value)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return trt


def test_fake_build_sets_everything_and_writes_manifest(fake_trt: Any, tmp_path: Path) -> None:
    onnx_file = _tiny_onnx(tmp_path / "m.onnx", "fp16")
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"old")
    cfg = TensorRTBuildConfig(precision="fp16", workspace_mib=256, batch=(1, 2, 4), timing_cache=cache,
                              builder_optimization_level=5, target="dgpu-ampere-plus")  # fmt: skip
    messages: list[str] = []
    manifest = engine_from_onnx(onnx_file, tmp_path / "out" / "m.engine", cfg, progress=messages.append)
    config = FAKE_STATE["config"]
    assert FAKE_STATE["network_flags"] == 1 << 5  # STRONGLY_TYPED only: no EXPLICIT_BATCH on 10.x
    assert config.flags_set == [] and config.pools == {"WORKSPACE": 256 << 20}
    assert FAKE_STATE["profile"] == {"input": ((1, 4), (2, 4), (4, 4))}
    assert config.builder_optimization_level == 5 and config.profiling_verbosity == "DETAILED"
    assert cache.read_bytes() == b"old+tuned"  # loaded, then saved back
    assert FAKE_STATE["parsed"] == str(onnx_file)
    assert (tmp_path / "out" / "m.engine").read_bytes() == b"FAKE-ENGINE-" + bytes([1 << 5])
    assert EngineManifest.load(manifest_path_for(tmp_path / "out" / "m.engine")) == manifest
    assert (manifest.runtime_version, manifest.precision, manifest.target) == ("10.13.0.35", "fp16", "dgpu-ampere-plus")
    assert manifest.build_options["strongly_typed_network"] is True and manifest.device_name == "unknown"  # no GPU here
    assert any("building m.engine" in m for m in messages)


def test_fake_build_dla_and_flag_path(fake_trt: Any, tmp_path: Path) -> None:
    onnx_file = _tiny_onnx(tmp_path / "m.onnx", "qdq", batch=1)
    cfg = TensorRTBuildConfig(precision="int8", dla_core=1, strongly_typed=False)
    engine_from_onnx(onnx_file, tmp_path / "m.engine", cfg)
    config = FAKE_STATE["config"]
    assert config.flags_set == ["INT8", "FP16", "GPU_FALLBACK"]
    assert (config.default_device_type, config.DLA_core) == ("DLA", 1)
    assert config.profiles == []  # static ONNX: no optimization profile
    with pytest.raises(EngineBuildError, match="2 DLA core"):
        engine_from_onnx(onnx_file, tmp_path / "m.engine", TensorRTBuildConfig(precision="int8", dla_core=2))


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


# ---------------------------------------------------------------- the fakes only use what TensorRT 10.13 has


def _stub_members() -> dict[str, set[str]]:
    stubs = Path(sys.prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    path = stubs / "tensorrt_bindings" / "tensorrt.pyi"
    if not path.is_file():
        pytest.skip("tensorrt-stubs not installed")
    # the stubs do not parse as Python (a parameter named `in`, defaults before non-defaults), so scan lines:
    # a top-level `class X` opens a class; 4-space `def name` and `name:` lines are its members
    members: dict[str, set[str]] = {}
    current: set[str] | None = None
    for line in path.read_text().splitlines():
        if m := re.match(r"class (\w+)\b", line):
            current = members.setdefault(m.group(1), set())
        elif line and not line.startswith(" "):
            current = None
        elif current is not None and (m := re.match(r"    (?:def )?(\w+)\s*[:(]", line)):
            current.add(m.group(1))
    return members


def test_fakes_and_used_names_exist_in_tensorrt_stubs() -> None:
    members = _stub_members()
    fakes: list[Any] = [FakeNetwork, FakeParser, FakeTimingCache, FakeProfile, FakeBuilderConfig, FakeBuilder,
                        FakeContext, FakeEngine, FakeRuntime]  # fmt: skip
    for fake in fakes:
        public = {n for n in vars(fake) if not n.startswith("_") and n != "STUB"}  # methods, properties, settings
        missing = public - members[fake.STUB]
        assert not missing, f"{fake.__name__} uses {missing}, not in tensorrt.{fake.STUB}"
    used = {
        "NetworkDefinitionCreationFlag": {"STRONGLY_TYPED", "EXPLICIT_BATCH"},
        "BuilderFlag": {"FP16", "INT8", "GPU_FALLBACK"},
        "MemoryPoolType": {"WORKSPACE"},
        "ProfilingVerbosity": {"DETAILED"},
        "DeviceType": {"DLA"},
        "HardwareCompatibilityLevel": {"AMPERE_PLUS"},
        "TensorIOMode": {"INPUT"},
        "ILogger": {"ERROR", "INTERNAL_ERROR", "WARNING", "log"},
        "IHostMemory": {"__buffer__"},
        "IInt8EntropyCalibrator2": set(),
    }
    for cls, names in used.items():
        assert cls in members and names <= members[cls], (cls, names - members.get(cls, set()))


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
