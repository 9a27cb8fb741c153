"""Stand-ins for the ``tensorrt`` module and a CUDA API that computes on host memory.

:func:`make_fake_trt` returns a module shaped like TensorRT 8.6, 10.x or 11.x (the enums differ: 8.x has no
``STRONGLY_TYPED``, 11.x no ``BuilderFlag.FP16/INT8``, no calibrators and no ``EXPLICIT_BATCH``); a test puts it
in ``sys.modules["tensorrt"]``, where the code under test's ``require("tensorrt")`` and ``import tensorrt`` find
it. Enums are ``IntEnum`` s with the stubs' values, so ``__members__`` and ``int()`` behave as on the real
pybind11 enums. Method names and parameter names follow the 10.13 stubs; mypy checks the production code's
calls against those stubs, so a fake cannot make a call TensorRT lacks pass unnoticed.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from cosep_deploy.backends.tensorrt.cuda import DeviceInfo

__all__ = ["FAKE_STATE", "FakeCuda", "make_fake_trt", "reset_fake_state"]

FAKE_STATE: dict[str, Any] = {}

VERSIONS = {"8": "8.6.1", "10": "10.13.0.35", "11": "11.4.1"}


def reset_fake_state() -> None:
    FAKE_STATE.clear()
    FAKE_STATE.update(parse_ok=True, build_ok=True, profile={}, runtimes=0, cuda=FakeCuda())


class FakeCuda:
    """CudaApi on host memory; captured work runs at graph launch, as with real stream capture."""

    name = "fake"
    supports_graphs = True

    def __init__(self, device: str = "Fake GPU") -> None:
        self.mem: dict[int, np.ndarray] = {}
        self.next_ptr, self.dev = 4096, device
        self.capturing: list[Callable[[], None]] | None = None
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

    def log(self, severity: int, msg: str) -> None:
        raise NotImplementedError("subclasses log")


class TensorIOMode(enum.IntEnum):
    NONE, INPUT, OUTPUT = range(3)


class FakeNetwork:
    def __init__(self, flags: int) -> None:
        self.flags = flags


class FakeParser:
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
    def __init__(self, data: bytes) -> None:
        self.data = data

    def serialize(self) -> bytes:
        return self.data + b"+tuned"


class FakeProfile:
    def set_shape(self, input: str, min: Any, opt: Any, max: Any) -> None:
        FAKE_STATE["profile"][input] = (min, opt, max)


class FakeBuilderConfig:
    def __init__(self) -> None:
        FAKE_STATE["config"] = self
        self.flags_set: list[Any] = []
        self.pools: dict[Any, int] = {}
        self.profiles: list[Any] = []
        self.cache: FakeTimingCache | None = None
        # the settings engine_from_onnx may assign, at TensorRT's defaults
        self.builder_optimization_level = 3
        self.profiling_verbosity: Any = None
        self.default_device_type: Any = None
        self.hardware_compatibility_level: Any = None
        self.DLA_core = -1

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
    def __init__(self, cuda: FakeCuda) -> None:
        self.cuda = cuda

    device_memory_size = 1 << 20  # TensorRT 8.6+ (v1)
    device_memory_size_v2 = 3 << 20  # TensorRT 10+: includes weight-streaming scratch

    @property
    def num_io_tensors(self) -> int:
        return 2

    def get_tensor_name(self, index: int) -> str:
        return ["input", "output"][index]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return TensorIOMode.INPUT if name == "input" else TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name: str) -> str:
        return "FLOAT"

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[tuple[int, ...]]:
        return [(1, 4), (2, 4), (4, 4)]

    def create_execution_context(self) -> FakeContext:
        return FakeContext(self.cuda)


class FakeRuntime:
    def __init__(self, logger: Any) -> None:
        FAKE_STATE["runtimes"] += 1

    def deserialize_cuda_engine(self, serialized_engine: bytes) -> FakeEngine | None:
        return FakeEngine(FAKE_STATE["cuda"]) if serialized_engine.startswith(b"FAKE") else None


def _enum(name: str, members: dict[str, int]) -> type[enum.IntEnum]:
    # the functional API builds a class; typeshed types the call like an instance lookup
    return enum.IntEnum(name, members)  # type: ignore[return-value]


def make_fake_trt(generation: str = "10") -> types.ModuleType:
    """A module standing in for ``tensorrt`` of the given generation ("8", "10" or "11")."""
    if generation not in VERSIONS:
        raise ValueError(f"generation must be one of {list(VERSIONS)}, found {generation!r}")
    network_flags = {
        "8": {"EXPLICIT_BATCH": 0},
        "10": {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1},
        "11": {"STRONGLY_TYPED": 1},
    }[generation]
    builder_flags = {"GPU_FALLBACK": 3} if generation == "11" else {"FP16": 0, "INT8": 1, "GPU_FALLBACK": 3}
    trt = types.ModuleType("tensorrt")
    trt.__file__ = "/fake/tensorrt/__init__.py"  # a real install, not the stub-only namespace package
    attrs: dict[str, Any] = {
        "__version__": VERSIONS[generation],
        "ILogger": FakeLogger,
        "Builder": FakeBuilder,
        "OnnxParser": FakeParser,
        "Runtime": FakeRuntime,
        "Dims": tuple,
        "NetworkDefinitionCreationFlag": _enum("NetworkDefinitionCreationFlag", network_flags),
        "BuilderFlag": _enum("BuilderFlag", builder_flags),
        "MemoryPoolType": _enum("MemoryPoolType", {"WORKSPACE": 0}),
        "ProfilingVerbosity": _enum("ProfilingVerbosity", {"LAYER_NAMES_ONLY": 0, "NONE": 1, "DETAILED": 2}),
        "DeviceType": _enum("DeviceType", {"GPU": 0, "DLA": 1}),
        "HardwareCompatibilityLevel": _enum("HardwareCompatibilityLevel", {"NONE": 0, "AMPERE_PLUS": 1}),
        "TensorIOMode": TensorIOMode,
        "nptype": lambda trt_type: np.float32,
    }
    if generation != "11":
        attrs["IInt8EntropyCalibrator2"] = type("IInt8EntropyCalibrator2", (), {})
    for key, value in attrs.items():
        setattr(trt, key, value)
    return trt
