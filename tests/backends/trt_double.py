"""A contract-faithful double of TensorRT's Python API and of cuda-python's runtime, computing on host memory.

Written from TensorRT's and CUDA's documentation, not from cosep-deploy's code:

- **Surface**: every public class, method, property and enum member here has the name and parameter names of
  the ``tensorrt-stubs`` 10.13 stubs (``test_trt_double.py`` checks it), and objects refuse attributes their
  class does not declare (pybind11 objects do), so a call the stubs lack fails here as on TensorRT. Per release
  (8.5, 8.6, 10.3, 10.13, 11.x) members are removed where that release lacks them (8.5: no
  ``builder_optimization_level`` or ``HardwareCompatibilityLevel``; 8.x: no ``STRONGLY_TYPED`` and no
  ``device_memory_size_v2``; 11.x: no weak-typing flags, calibrators, ``EXPLICIT_BATCH`` or v1 memory size).
- **Contracts** (TensorRT's developer guide and API docs): a Python ``ILogger`` subclass must call
  ``ILogger.__init__`` (pybind11 raises ``TypeError`` otherwise) and is handed messages of every severity, VERBOSE
  included (filtering is the logger's job: only the built-in ``trt.Logger`` has a ``min_severity``); a network
  with dynamic inputs needs an optimization profile added to the config, with min <= opt <= max covering every
  dynamic input; strongly typed networks refuse precision flags; 8.x needs ``EXPLICIT_BATCH`` for ONNX and the
  INT8 flag for Q/DQ; DLA needs static shapes, fp16/int8 and an existing core; ``set_input_shape`` only on inputs
  and inside the profile; every IO tensor address set and every input shape given before ``execute_async_v3``; IO
  tensors have the dtypes the network declares (fp16 IO stays fp16); an engine deserialises only in the TensorRT
  release that built it (and, for DLA, on a runtime whose ``DLA_core`` names a core: a stricter rule than
  TensorRT's default core, so the runner must say which core).
- **Computation**: an engine holds its ONNX file and runs it with ONNX Runtime on the bytes in "device" memory,
  reading and writing them with the engine's IO dtypes; enqueued work is deferred while a stream is being
  captured and replayed by ``cudaGraphLaunch``.

:func:`make_double` returns fresh ``tensorrt`` and ``cuda.bindings.runtime`` modules sharing one :class:`Gpu`;
nothing is shared between two calls.
"""

from __future__ import annotations

import ctypes
import enum
import importlib.machinery
import json
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["RELEASES", "Gpu", "install_double", "make_double"]

RELEASES = {"8.5": "8.5.2.2", "8.6": "8.6.1.6", "10.3": "10.3.0.30", "10.13": "10.13.0.35", "11": "11.4.1.3"}
_MAGIC = b"TRT-DOUBLE-PLAN\n"
_ONNX_DTYPES = {1: "FLOAT", 10: "HALF", 3: "INT8", 6: "INT32", 7: "INT64", 9: "BOOL", 2: "UINT8", 16: "BF16"}
_NP = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "INT64": np.int64}
_NP.update({"BOOL": np.bool_, "UINT8": np.uint8})


class Gpu:
    """The device both doubles share: allocations (real host buffers at real addresses), streams, captures."""

    def __init__(
        self,
        *,
        name: str = "NVIDIA Double GPU",
        capability: tuple[int, int] = (9, 0),
        sm_count: int = 132,
        memory_bytes: int = 80 << 30,
        dla_cores: int = 0,
        driver_ok: bool = True,
    ) -> None:
        self.name, self.capability, self.sm_count, self.memory_bytes = name, capability, sm_count, memory_bytes
        self.dla_cores, self.driver_ok = dla_cores, driver_ok
        self.allocations: dict[int, Any] = {}
        self.streams: set[int] = set()
        self.capturing: dict[int, list[Callable[[], None]]] = {}
        self.capture_modes: list[str] = []
        self.graph_launches = 0
        self.executions = 0
        self._next_handle = 0x1000

    def handle(self) -> int:
        self._next_handle += 16
        return self._next_handle

    def region(self, ptr: int, nbytes: int) -> bool:
        """True if [ptr, ptr + nbytes) lies inside one allocation."""
        return any(base <= ptr and ptr + nbytes <= base + ctypes.sizeof(buf) for base, buf in self.allocations.items())

    def submit(self, stream: int, work: Callable[[], None]) -> None:
        """Run ``work`` now, or record it into the capture under way on ``stream``."""
        if stream in self.capturing:
            self.capturing[stream].append(work)
        else:
            work()


# ------------------------------------------------------------------------------------------ pybind11 behaviour


class _PybindMeta(type):
    """pybind11 checks, after a Python subclass's ``__init__`` returns, that the bound base was initialised."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        obj = super().__call__(*args, **kwargs)
        if getattr(cls, "_needs_base_init", False) and not obj.__dict__.get("_base_initialised"):
            raise TypeError(f"{cls.__name__}.__init__() must be called when overriding __init__")
        return obj


class _Strict(metaclass=_PybindMeta):
    """Objects refuse attributes their class does not declare, as pybind11 objects without dynamic attributes."""

    _world: Any = None

    def __setattr__(self, name: str, value: Any) -> None:
        # Python subclasses (a user's ILogger) have a __dict__ like any Python class; bound classes do not
        bound = "_world" in vars(type(self))
        if bound and not name.startswith("_") and not hasattr(type(self), name):
            raise AttributeError(f"'tensorrt.{type(self).__name__}' object has no attribute '{name}'")
        object.__setattr__(self, name, value)


def _enum(name: str, members: dict[str, int]) -> Any:
    return enum.IntEnum(name, members)


class Dims(_Strict):
    def __init__(self, shape: list[int] | None = None) -> None:
        self._d = [int(x) for x in (shape or [])]

    def __len__(self) -> int:
        return len(self._d)

    def __getitem__(self, arg0: int) -> int:
        return self._d[arg0]

    def __eq__(self, arg0: object) -> bool:
        other = getattr(arg0, "_d", arg0)
        return tuple(self._d) == tuple(other) if isinstance(other, list | tuple) else NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"({', '.join(map(str, self._d))})"


def _dims(x: Any) -> tuple[int, ...]:
    if isinstance(getattr(x, "_d", None), list):  # a Dims of this double
        return tuple(x._d)
    if isinstance(x, list | tuple):
        return tuple(int(v) for v in x)
    raise TypeError(f"incompatible function arguments: expected Dims, tuple or list, got {type(x).__name__}")


class ILogger(_Strict):
    _needs_base_init = True

    def __init__(self) -> None:
        object.__setattr__(self, "_base_initialised", True)

    def log(self, severity: Any, msg: str) -> None:
        raise RuntimeError("pure virtual ILogger.log called")


def _check_logger(world: Any, logger: Any, where: str) -> None:
    if not isinstance(logger, world.trt.ILogger) or not logger.__dict__.get("_base_initialised"):
        raise TypeError(f"{where}(): incompatible constructor arguments: logger must be an initialised ILogger")


def _log_error(logger: Any, msg: str) -> None:
    logger.log(type(logger).ERROR, msg)


class IHostMemory(bytes):
    """Serialized engines and timing caches: a buffer (``bytes(memory)`` copies it)."""

    @property
    def nbytes(self) -> int:
        return len(self)


class ITimingCache(_Strict):
    def __init__(self, header: dict[str, Any], data: bytes) -> None:
        self._header, self._data = header, data

    def serialize(self) -> IHostMemory:
        return IHostMemory(json.dumps(self._header).encode() + b"\n" + self._data + b"+tuned")


class ITensor(_Strict):
    def __init__(self, name: str, dtype: Any, shape: tuple[int, ...]) -> None:
        self._name, self._dtype, self._shape = name, dtype, shape

    @property
    def name(self) -> str:  # a settable attribute in the stubs; read-only is enough here
        return self._name

    @property
    def dtype(self) -> Any:
        return self._dtype

    @property
    def shape(self) -> Dims:
        return Dims(list(self._shape))


class INetworkDefinition(_Strict):
    def __init__(self, flags: int) -> None:
        self._flags = flags
        self._io: dict[str, list[dict[str, Any]]] = {"inputs": [], "outputs": []}
        self._onnx: bytes = b""
        self._qdq = False

    @property
    def flags(self) -> int:
        return self._flags

    @property
    def num_inputs(self) -> int:
        return len(self._io["inputs"])

    @property
    def num_outputs(self) -> int:
        return len(self._io["outputs"])

    def get_input(self, index: int) -> ITensor:
        t = self._io["inputs"][index]
        return ITensor(t["name"], self._world.trt.DataType[t["dtype"]], tuple(t["shape"]))

    def get_output(self, index: int) -> ITensor:
        t = self._io["outputs"][index]
        return ITensor(t["name"], self._world.trt.DataType[t["dtype"]], tuple(t["shape"]))


class OnnxParser(_Strict):
    def __init__(self, network: INetworkDefinition, logger: ILogger) -> None:
        _check_logger(self._world, logger, "OnnxParser.__init__")
        self._network, self._logger, self._errors = network, logger, []

    @property
    def num_errors(self) -> int:
        return len(self._errors)

    def get_error(self, index: int) -> str:
        return self._errors[index]

    def parse_from_file(self, model: str) -> bool:
        import onnx

        world = self._world
        if world.release[0] == 8 and not self._network.flags & (1 << 0):
            self._errors.append("the ONNX parser only supports networks with an explicit batch dimension")
            return False
        proto = onnx.load(model)
        opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
        if world.release[0] == 8 and opset > 17:
            self._errors.append(f"Unsupported ONNX opset {opset}: this parser reads opsets up to 17")
            return False
        world.parsed.append(model)
        inits = {i.name for i in proto.graph.initializer}

        def io(values: Any) -> list[dict[str, Any]]:
            out = []
            for v in values:
                if v.name in inits:
                    continue
                dims = [d.dim_value if d.dim_value > 0 else -1 for d in v.type.tensor_type.shape.dim]
                out.append({"name": v.name, "dtype": _ONNX_DTYPES[v.type.tensor_type.elem_type], "shape": dims})
            return out

        net = self._network
        net._io = {"inputs": io(proto.graph.input), "outputs": io(proto.graph.output)}
        net._onnx = Path(model).read_bytes()
        net._qdq = any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in proto.graph.node)
        return True


class IOptimizationProfile(_Strict):
    def __init__(self) -> None:
        self._shapes: dict[str, tuple[tuple[int, ...], ...]] = {}
        self._valid = True

    def set_shape(self, input: str, min: Any, opt: Any, max: Any) -> None:
        lo, mid, hi = _dims(min), _dims(opt), _dims(max)
        if not (len(lo) == len(mid) == len(hi)) or any(not a <= b <= c for a, b, c in zip(lo, mid, hi, strict=True)):
            self._valid = False  # TensorRT logs an error and the profile becomes invalid
            return
        self._shapes[input] = (lo, mid, hi)

    def get_shape(self, input: str) -> list[Dims]:
        return [Dims(list(s)) for s in self._shapes[input]]

    def __bool__(self) -> bool:
        return self._valid


class IBuilderConfig(_Strict):
    DLA_core: int = -1
    default_device_type: Any = None
    profiling_verbosity: Any = None
    hardware_compatibility_level: Any = None
    builder_optimization_level: int = 3

    def __init__(self) -> None:
        self._flags: list[Any] = []
        self._pools: dict[Any, int] = {}
        self._profiles: list[IOptimizationProfile] = []
        self._cache: ITimingCache | None = None
        self._world.configs.append(self)

    @property
    def num_optimization_profiles(self) -> int:
        return len(self._profiles)

    def set_flag(self, flag: Any) -> None:
        if flag not in self._world.trt.BuilderFlag:
            raise TypeError("set_flag(): incompatible function arguments")
        self._flags.append(flag)

    def get_flag(self, flag: Any) -> bool:
        return flag in self._flags

    def set_memory_pool_limit(self, pool: Any, pool_size: int) -> None:
        self._pools[pool] = pool_size

    def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
        if not profile:
            return -1
        self._profiles.append(profile)
        return len(self._profiles) - 1

    def create_timing_cache(self, serialized_timing_cache: bytes) -> ITimingCache:
        data = bytes(serialized_timing_cache)
        header, _, rest = data.partition(b"\n")
        return ITimingCache(json.loads(header) if header else self._world.cache_header(), rest)

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        if cache._header != self._world.cache_header() and not ignore_mismatch:
            return False
        self._cache = cache
        return True

    def get_timing_cache(self) -> ITimingCache:
        return self._cache or ITimingCache(self._world.cache_header(), b"")


class Builder(_Strict):
    def __init__(self, logger: ILogger) -> None:
        _check_logger(self._world, logger, "Builder.__init__")
        if not self._world.gpu.driver_ok:
            _log_error(logger, "CUDA initialization failure with error: 35")
            raise TypeError("pybind11::init(): factory function returned nullptr")
        self._logger = logger

    @property
    def num_DLA_cores(self) -> int:
        return int(self._world.gpu.dla_cores)

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        known = sum(1 << int(m) for m in self._world.trt.NetworkDefinitionCreationFlag)
        if flags & ~known:
            _log_error(self._logger, f"invalid network creation flags {flags}")
            raise TypeError("create_network(): invalid flags")
        return self._world.trt.INetworkDefinition(flags)

    def create_builder_config(self) -> IBuilderConfig:
        return self._world.trt.IBuilderConfig()

    def create_optimization_profile(self) -> IOptimizationProfile:
        return self._world.trt.IOptimizationProfile()

    def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig) -> IHostMemory | None:
        problem = self._world.check_build(network, config)
        if problem is not None:
            _log_error(self._logger, problem)
            return None
        return IHostMemory(self._world.plan(network, config))


class IExecutionContext(_Strict):
    def __init__(self, engine: ICudaEngine) -> None:
        self._engine = engine
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._addresses: dict[str, int] = {}

    def _error(self, msg: str) -> bool:
        _log_error(self._engine._logger, msg)
        return False

    def set_input_shape(self, name: str, shape: Any) -> bool:
        spec = self._engine._spec(name)
        if spec is None or spec["mode"] != "INPUT":
            return self._error(f"Error Code 3: API Usage Error (setInputShape: {name!r} is not an input tensor)")
        dims = _dims(shape)
        built = tuple(spec["shape"])
        if len(dims) != len(built) or any(b != -1 and b != d for b, d in zip(built, dims, strict=True)):
            return self._error(f"Error Code 3: setInputShape: {dims} does not match the network's {built}")
        if name in self._engine._profile:
            lo, _, hi = self._engine._profile[name]
            if any(not a <= d <= c for a, d, c in zip(lo, dims, hi, strict=True)):
                return self._error(f"Error Code 3: setInputShape: {dims} is outside the profile {lo}..{hi}")
        self._shapes[name] = dims
        return True

    def get_tensor_shape(self, name: str) -> Dims:
        spec = self._engine._spec(name)
        if spec is None:
            return Dims([])
        if spec["mode"] == "INPUT":
            return Dims(list(self._shapes.get(name, tuple(spec["shape"]))))
        shapes = self._engine._output_shapes(self._input_shapes())
        return Dims(list(shapes[name]) if shapes else spec["shape"])

    def _input_shapes(self) -> dict[str, tuple[int, ...]] | None:
        out = {}
        for spec in self._engine._io("INPUT"):
            shape = self._shapes.get(spec["name"], tuple(spec["shape"]))
            if any(d < 0 for d in shape):
                return None
            out[spec["name"]] = shape
        return out

    def set_tensor_address(self, name: str, memory: int) -> bool:
        if self._engine._spec(name) is None:
            return self._error(f"Error Code 3: setTensorAddress: {name!r} is not an IO tensor")
        self._addresses[name] = int(memory)
        return True

    def get_tensor_address(self, name: str) -> int:
        return self._addresses.get(name, 0)

    @property
    def all_binding_shapes_specified(self) -> bool:
        return self._input_shapes() is not None

    def execute_async_v3(self, stream_handle: int) -> bool:
        engine, gpu = self._engine, self._engine._world.gpu
        shapes = self._input_shapes()
        if shapes is None:
            return self._error("Error Code 3: enqueueV3: not all input shapes are specified")
        for spec in engine._io():
            if spec["name"] not in self._addresses:
                return self._error(f"Error Code 3: enqueueV3: address is not set for tensor {spec['name']!r}")
        if int(stream_handle) not in gpu.streams:
            return self._error(f"Error Code 1: Cuda Runtime (invalid resource handle {stream_handle})")
        out_shapes = engine._output_shapes(shapes)
        for spec in engine._io():
            shape = shapes.get(spec["name"]) or out_shapes[spec["name"]]
            nbytes = int(np.prod(shape)) * np.dtype(_NP[spec["dtype"]]).itemsize
            if not gpu.region(self._addresses[spec["name"]], nbytes):
                return self._error(f"Error Code 1: Cuda Runtime (an illegal memory access: {spec['name']!r})")
        addresses = dict(self._addresses)
        gpu.submit(int(stream_handle), lambda: engine._run(shapes, addresses))
        return True


class ICudaEngine(_Strict):
    def __init__(self, header: dict[str, Any], onnx_bytes: bytes, logger: ILogger) -> None:
        self._header, self._onnx, self._logger = header, onnx_bytes, logger
        self._profile = {k: tuple(tuple(s) for s in v) for k, v in header["profile"].items()}
        self._session: Any = None
        self._shape_cache: dict[Any, dict[str, tuple[int, ...]]] = {}

    def _io(self, mode: str | None = None) -> list[dict[str, Any]]:
        specs = [{**t, "mode": "INPUT"} for t in self._header["inputs"]]
        specs += [{**t, "mode": "OUTPUT"} for t in self._header["outputs"]]
        return [s for s in specs if mode is None or s["mode"] == mode]

    def _spec(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self._io() if s["name"] == name), None)

    def _ort(self) -> Any:
        if self._session is None:
            import onnxruntime as ort

            self._session = ort.InferenceSession(self._onnx, providers=["CPUExecutionProvider"])
        return self._session

    def _output_shapes(self, shapes: dict[str, tuple[int, ...]] | None) -> dict[str, tuple[int, ...]]:
        if shapes is None:
            return {}
        key = tuple(sorted(shapes.items()))
        if key not in self._shape_cache:
            feed = {s["name"]: np.zeros(shapes[s["name"]], _NP[s["dtype"]]) for s in self._io("INPUT")}
            names = [s["name"] for s in self._io("OUTPUT")]
            self._shape_cache[key] = dict(zip(names, (o.shape for o in self._ort().run(names, feed)), strict=True))
        return self._shape_cache[key]

    def _run(self, shapes: dict[str, tuple[int, ...]], addresses: dict[str, int]) -> None:
        """What the GPU does: read inputs as their engine dtypes, compute, write outputs as theirs."""
        self._world.gpu.executions += 1
        feed = {}
        for s in self._io("INPUT"):
            dtype, shape = np.dtype(_NP[s["dtype"]]), shapes[s["name"]]
            raw = ctypes.string_at(addresses[s["name"]], int(np.prod(shape)) * dtype.itemsize)
            feed[s["name"]] = np.frombuffer(raw, dtype).reshape(shape)
        names = [s["name"] for s in self._io("OUTPUT")]
        for spec, value in zip(self._io("OUTPUT"), self._ort().run(names, feed), strict=True):
            data = np.ascontiguousarray(value, dtype=_NP[spec["dtype"]])
            ctypes.memmove(addresses[spec["name"]], data.ctypes.data, data.nbytes)

    @property
    def num_io_tensors(self) -> int:
        return len(self._io())

    @property
    def num_optimization_profiles(self) -> int:
        return 1

    @property
    def device_memory_size(self) -> int:
        return 1 << 20

    @property
    def device_memory_size_v2(self) -> int:
        return 3 << 20

    def get_tensor_name(self, index: int) -> str:
        return str(self._io()[index]["name"])

    def get_tensor_mode(self, name: str) -> Any:
        spec = self._spec(name)
        return self._world.trt.TensorIOMode[spec["mode"] if spec else "NONE"]

    def get_tensor_dtype(self, name: str) -> Any:
        spec = self._spec(name)
        if spec is None:
            raise ValueError(f"no tensor {name!r}")
        return self._world.trt.DataType[spec["dtype"]]

    def get_tensor_shape(self, name: str) -> Dims:
        spec = self._spec(name)
        return Dims(spec["shape"] if spec else [])

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[Dims]:
        spec = self._spec(name)
        if spec is None or spec["mode"] != "INPUT" or profile_index != 0:
            raise ValueError(f"get_tensor_profile_shape: {name!r} is not an input of profile {profile_index}")
        shapes = self._profile.get(name) or (tuple(spec["shape"]),) * 3
        return [Dims(list(s)) for s in shapes]

    def create_execution_context(self) -> IExecutionContext:
        return self._world.trt.IExecutionContext(self)


class Runtime(_Strict):
    DLA_core: int = -1

    def __init__(self, logger: ILogger) -> None:
        _check_logger(self._world, logger, "Runtime.__init__")
        self._logger = logger
        self._world.runtimes.append(self)

    @property
    def num_DLA_cores(self) -> int:
        return int(self._world.gpu.dla_cores)

    def deserialize_cuda_engine(self, serialized_engine: bytes) -> ICudaEngine | None:
        data = bytes(serialized_engine)
        if not data.startswith(_MAGIC):
            _log_error(self._logger, "Error Code 1: Serialization (Magic tag does not match)")
            return None
        header_line, _, onnx_bytes = data[len(_MAGIC) :].partition(b"\n")
        header = json.loads(header_line)
        if header["version"] != self._world.version:
            _log_error(
                self._logger,
                "Error Code 6: API Usage Error (The engine plan file is not compatible with this version of "
                f"TensorRT, expecting library version {self._world.version} got {header['version']}, please rebuild.)",
            )
            return None
        if header["dla_core"] is not None and not 0 <= self.DLA_core < self._world.gpu.dla_cores:
            _log_error(self._logger, f"engine built for DLA: set Runtime.DLA_core to a core (found {self.DLA_core})")
            return None
        severity = type(self._logger)  # TensorRT's own lines on a successful load, INFO and VERBOSE
        self._logger.log(severity.INFO, f"Loaded engine size: {max(1, len(data) >> 20)} MiB")
        self._logger.log(severity.VERBOSE, "Deserialization required 1024 microseconds.")
        return self._world.trt.ICudaEngine(header, onnx_bytes, self._logger)


def nptype(trt_type: Any) -> type:
    return _NP[trt_type.name]  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------- the world


class _World:
    """One TensorRT release on one :class:`Gpu`: the build rules and the plan format."""

    def __init__(self, release: str, gpu: Gpu) -> None:
        self.version = RELEASES[release]
        self.release = tuple(int(x) for x in self.version.split("."))
        self.gpu = gpu
        self.trt: Any = None
        self.configs: list[IBuilderConfig] = []
        self.runtimes: list[Runtime] = []
        self.parsed: list[str] = []

    def cache_header(self) -> dict[str, Any]:
        return {"version": self.version, "device": self.gpu.name}

    def check_build(self, network: INetworkDefinition, config: IBuilderConfig) -> str | None:
        """Why TensorRT would refuse this build, or None."""
        trt, flags = self.trt, {f.name for f in config._flags}
        typed = "STRONGLY_TYPED" in trt.NetworkDefinitionCreationFlag.__members__ and bool(
            network.flags & (1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        )
        if not network._io["inputs"]:
            return "Error Code 4: Network must have at least one input"
        if typed and flags & {"FP16", "INT8", "BF16", "FP8"}:
            return f"Error Code 3: precision flags {sorted(flags)} cannot be set on a strongly typed network"
        if not typed and network._qdq and "INT8" not in flags:
            return "Error Code 4: the network has Q/DQ layers but the INT8 builder flag is not set"
        dynamic = [t for t in network._io["inputs"] if -1 in t["shape"]]
        if dynamic and not config._profiles:
            return "Error Code 4: Network has dynamic or shape inputs, but no optimization profile has been defined."
        profile = config._profiles[0]._shapes if config._profiles else {}
        for t in network._io["inputs"]:
            if t["name"] not in profile:
                if -1 in t["shape"]:
                    return f"Error Code 4: optimization profile is missing values for input {t['name']!r}"
                continue
            for s in profile[t["name"]]:
                if len(s) != len(t["shape"]) or any(b != -1 and b != d for b, d in zip(t["shape"], s, strict=True)):
                    return f"Error Code 4: profile shape {s} does not match input {t['name']!r} {t['shape']}"
        dla = config.default_device_type is not None and config.default_device_type.name == "DLA"
        if dla:
            if not 0 <= config.DLA_core < self.gpu.dla_cores:
                return f"Error Code 2: DLA core {config.DLA_core} does not exist ({self.gpu.dla_cores} cores)"
            if any(len({lo, opt, hi}) != 1 for lo, opt, hi in profile.values()):
                return "Error Code 4: DLA supports static shapes only (min = opt = max in the profile)"
            if self.release[0] == 8 and network._qdq:
                return "Error Code 4: DLA does not support explicitly quantized (Q/DQ) networks in this release"
            if not typed and not flags & {"FP16", "INT8"} and "GPU_FALLBACK" not in flags:
                return "Error Code 4: DLA needs FP16 or INT8 precision"
        return None

    def plan(self, network: INetworkDefinition, config: IBuilderConfig) -> bytes:
        profile = config._profiles[0]._shapes if config._profiles else {}
        dla = config.default_device_type is not None and config.default_device_type.name == "DLA"
        header = {
            "version": self.version,
            "inputs": network._io["inputs"],
            "outputs": network._io["outputs"],
            "profile": {k: [list(s) for s in v] for k, v in profile.items()},
            "dla_core": config.DLA_core if dla else None,
            "flags": sorted(f.name for f in config._flags),
            "network_flags": network.flags,
        }
        return _MAGIC + json.dumps(header).encode() + b"\n" + network._onnx


_CLASSES: tuple[type, ...] = (
    Dims,
    ILogger,
    ITimingCache,
    ITensor,
    INetworkDefinition,
    OnnxParser,
    IOptimizationProfile,
    IBuilderConfig,
    Builder,
    IExecutionContext,
    ICudaEngine,
    Runtime,
)


def _absent(release: tuple[int, ...]) -> dict[str, set[str]]:
    """Class -> members this release lacks (module-level names under "")."""
    absent: dict[str, set[str]] = {"": set(), "IBuilderConfig": set(), "ICudaEngine": set()}
    if release[:2] < (8, 6):
        absent["IBuilderConfig"] |= {"builder_optimization_level", "hardware_compatibility_level"}
        absent[""].add("HardwareCompatibilityLevel")
    if release[0] < 10:
        absent["ICudaEngine"].add("device_memory_size_v2")
    if release[0] >= 11:
        absent["ICudaEngine"].add("device_memory_size")
        absent[""] |= {"IInt8EntropyCalibrator2", "IInt8Calibrator"}
    return absent


def _copy_class(cls: type, world: _World, absent: set[str]) -> type:
    ns = {k: v for k, v in vars(cls).items() if k not in ("__dict__", "__weakref__") and k not in absent}
    ns["_world"] = world
    if cls is ILogger:
        ns["Severity"] = severity = _enum(
            "Severity", {"INTERNAL_ERROR": 0, "ERROR": 1, "WARNING": 2, "INFO": 3, "VERBOSE": 4}
        )
        ns.update({m.name: m for m in severity})
    return type(cls)(cls.__name__, cls.__bases__, ns)


def make_double(release: str = "10.13", gpu: Gpu | None = None) -> tuple[types.ModuleType, types.ModuleType, Gpu]:
    """Fresh ``tensorrt`` (of ``release``, a key of :data:`RELEASES`) and ``cuda.bindings.runtime`` doubles on
    ``gpu`` (a new :class:`Gpu` by default)."""
    from tests.backends.cuda_double import make_cuda_runtime

    gpu = gpu or Gpu()
    world = _World(release, gpu)
    absent = _absent(world.release)
    trt = types.ModuleType("tensorrt")
    trt.__file__ = "/double/tensorrt/__init__.py"
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)  # importlib.util.find_spec reads it
    world.trt = trt
    for cls in _CLASSES:
        setattr(trt, cls.__name__, _copy_class(cls, world, absent.get(cls.__name__, set())))
    trt.IHostMemory = IHostMemory  # type: ignore[attr-defined]
    gen = world.release[0]
    network_flags = {"EXPLICIT_BATCH": 0} if gen < 11 else {}
    if gen >= 10:
        network_flags["STRONGLY_TYPED"] = 1
    builder_flags = {"GPU_FALLBACK": 3} if gen >= 11 else {"FP16": 0, "INT8": 1, "GPU_FALLBACK": 3}
    enums = {
        "NetworkDefinitionCreationFlag": network_flags,
        "BuilderFlag": builder_flags,
        "MemoryPoolType": {"WORKSPACE": 0},
        "ProfilingVerbosity": {"LAYER_NAMES_ONLY": 0, "NONE": 1, "DETAILED": 2},
        "DeviceType": {"GPU": 0, "DLA": 1},
        "HardwareCompatibilityLevel": {"NONE": 0, "AMPERE_PLUS": 1},
        "TensorIOMode": {"NONE": 0, "INPUT": 1, "OUTPUT": 2},
        "DataType": {"FLOAT": 0, "HALF": 1, "INT8": 2, "INT32": 3, "BOOL": 4, "UINT8": 5, "BF16": 7, "INT64": 8},
    }
    for name, members in enums.items():
        if name not in absent[""]:
            setattr(trt, name, _enum(name, members))
    trt.__version__ = world.version  # type: ignore[attr-defined]
    trt.nptype = nptype  # type: ignore[attr-defined]
    if "IInt8EntropyCalibrator2" not in absent[""]:
        trt.IInt8EntropyCalibrator2 = type("IInt8EntropyCalibrator2", (), {})  # type: ignore[attr-defined]
    return trt, make_cuda_runtime(gpu), gpu


def install_double(monkeypatch: Any, release: str = "10.13", gpu: Gpu | None = None) -> tuple[Any, Any, Gpu]:
    """:func:`make_double`, registered as ``tensorrt`` and ``cuda.bindings.runtime`` for one test."""
    trt, rt, gpu = make_double(release, gpu)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", rt)
    return trt, rt, gpu
