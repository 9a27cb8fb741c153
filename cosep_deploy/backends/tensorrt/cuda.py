"""Device memory, streams, events and CUDA graphs for the TensorRT runner, over whichever binding answers.

TensorRT's own samples use cuda-python (``cuda.bindings.runtime``; ``cuda.cudart`` in cuda-python < 12.6)
since 10.13; many Jetson images ship PyCUDA instead; torch's CUDA API is the last resort. All sit behind
:class:`CudaApi`, so the runner does not care which one it got. cuda-python calls return ``(error, *results)``
tuples; :func:`check_cuda` turns a failing one into an error naming the call.

cuda-python is pinned per CUDA major (extras ``cuda11``/``cuda12``/``cuda13``): cuda-python 13 needs an NVIDIA
driver >= 580, which no JetPack 6 board has. :func:`cuda_api` therefore does not stop at the first binding that
imports: it asks each binding in turn for the device, and takes the first that answers (a cuda-python too new
for the driver fails with ``cudaErrorInsufficientDriver`` and the next binding is tried).

CUDA graphs are captured in ``cudaStreamCaptureModeThreadLocal``, the mode trtexec uses
(``TrtCudaGraph::beginCapture`` in TensorRT's ``samples/common/sampleDevice.h``), so the runner and trtexec
time the same kind of graph.

The bindings stay typed ``Any``: cuda-python (``cuda-bindings`` 13.x) ships compiled Cython modules with
``.pxd`` files but no ``.pyi`` stubs or ``py.typed`` marker, and PyCUDA has none either, so mypy has nothing
to check calls against. The typed surface is :class:`CudaApi`, which the TensorRT runner uses.
"""

from __future__ import annotations

import dataclasses
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from cosep_deploy.deps import is_available, require
from cosep_deploy.errors import CosepError, MissingDependencyError

__all__ = [
    "BINDINGS",
    "CudaApi",
    "CudaError",
    "CudaPython",
    "DeviceInfo",
    "PyCuda",
    "TorchCuda",
    "check_cuda",
    "cuda_api",
    "device_info",
]

# the bindings cuda_api() tries, in order
BINDINGS = ("cuda.bindings.runtime", "cuda.cudart", "pycuda.driver", "torch")


class CudaError(CosepError):
    """A CUDA runtime call failed (no driver, no device, out of memory...)."""


@dataclasses.dataclass(frozen=True)
class DeviceInfo:
    """What the CUDA runtime says about one GPU. Name and compute capability alone do not tell Orin modules
    apart (all are "Orin", 8.7): the SM count and total memory do (AGX Orin 64 GB: 16 SMs; Orin Nano: 8)."""

    name: str  # as cudaGetDeviceProperties reports it: "Orin", "NVIDIA H100 80GB HBM3"
    compute_capability: str  # "8.7"
    sm_count: int | None = None  # multiProcessorCount
    memory_bytes: int | None = None  # totalGlobalMem


class CudaApi(Protocol):
    """The few CUDA operations a runner needs; pointers are ints, streams/events/graphs opaque handles."""

    name: str
    supports_graphs: bool

    def device(self, index: int) -> DeviceInfo: ...
    def malloc(self, nbytes: int) -> int: ...
    def free(self, ptr: int) -> None: ...
    def copy_htod(self, ptr: int, host: np.ndarray, stream: Any) -> None: ...
    def copy_dtoh(self, host: np.ndarray, ptr: int, stream: Any) -> None: ...
    def stream_create(self) -> Any: ...
    def stream_handle(self, stream: Any) -> int: ...
    def stream_sync(self, stream: Any) -> None: ...
    def stream_destroy(self, stream: Any) -> None: ...
    def event_create(self) -> Any: ...
    def event_record(self, event: Any, stream: Any) -> None: ...
    def elapsed_ms(self, start: Any, end: Any) -> float: ...
    def event_destroy(self, event: Any) -> None: ...
    def capture_begin(self, stream: Any) -> None: ...
    def capture_end(self, stream: Any) -> Any: ...
    def graph_launch(self, graph: Any, stream: Any) -> None: ...
    def graph_destroy(self, graph: Any) -> None: ...
    def close(self) -> None: ...


def check_cuda(result: Any, call: str, rt: Any) -> Any:
    """Unpack a cuda-python ``(err, *values)`` result; raise :class:`CudaError` unless ``err`` is success."""
    err, values = (result[0], result[1:]) if isinstance(result, tuple) else (result, ())
    if err != rt.cudaError_t.cudaSuccess:
        text = getattr(err, "name", str(err))
        described = rt.cudaGetErrorString(err)  # (cudaSuccess, b"no CUDA-capable device is detected")
        if isinstance(described, tuple) and len(described) == 2 and isinstance(described[1], bytes):
            text = f"{text}: {described[1].decode(errors='replace')}"
        raise CudaError(f"CUDA call {call} failed ({text}); check the NVIDIA driver and that a GPU is visible")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


class CudaPython:
    """:class:`CudaApi` over cuda-python's runtime bindings."""

    name = "cuda-python"
    supports_graphs = True

    def __init__(self, runtime: ModuleType | Any) -> None:
        self.rt: Any = runtime  # cuda.bindings.runtime, untyped (see the module docstring); or a fake

    def _call(self, fn: str, *args: Any) -> Any:
        return check_cuda(getattr(self.rt, fn)(*args), fn, self.rt)

    def device(self, index: int) -> DeviceInfo:
        count = self._call("cudaGetDeviceCount")
        if index >= count:
            raise CudaError(f"CUDA device {index} requested but {count} device(s) are visible")
        self._call("cudaSetDevice", index)
        props = self._call("cudaGetDeviceProperties", index)
        name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
        return DeviceInfo(
            name=name.rstrip("\x00").strip(),
            compute_capability=f"{props.major}.{props.minor}",
            sm_count=int(props.multiProcessorCount),
            memory_bytes=int(props.totalGlobalMem),
        )

    def malloc(self, nbytes: int) -> int:
        return int(self._call("cudaMalloc", max(nbytes, 1)))

    def free(self, ptr: int) -> None:
        self._call("cudaFree", ptr)

    def copy_htod(self, ptr: int, host: np.ndarray, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._call("cudaMemcpyAsync", ptr, host.ctypes.data, host.nbytes, kind, stream)

    def copy_dtoh(self, host: np.ndarray, ptr: int, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._call("cudaMemcpyAsync", host.ctypes.data, ptr, host.nbytes, kind, stream)

    def stream_create(self) -> Any:
        return self._call("cudaStreamCreate")

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def stream_sync(self, stream: Any) -> None:
        self._call("cudaStreamSynchronize", stream)

    def stream_destroy(self, stream: Any) -> None:
        self._call("cudaStreamDestroy", stream)

    def event_create(self) -> Any:
        return self._call("cudaEventCreate")

    def event_record(self, event: Any, stream: Any) -> None:
        self._call("cudaEventRecord", event, stream)

    def elapsed_ms(self, start: Any, end: Any) -> float:
        self._call("cudaEventSynchronize", end)
        return float(self._call("cudaEventElapsedTime", start, end))

    def event_destroy(self, event: Any) -> None:
        self._call("cudaEventDestroy", event)

    def capture_begin(self, stream: Any) -> None:
        # thread-local, as trtexec captures (see the module docstring): only this thread's unsafe calls
        # invalidate the capture, so a benchmark's other threads cannot break it
        mode = self.rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        self._call("cudaStreamBeginCapture", stream, mode)

    def capture_end(self, stream: Any) -> Any:
        graph = self._call("cudaStreamEndCapture", stream)
        try:
            return self._call("cudaGraphInstantiate", graph, 0)
        finally:
            self._call("cudaGraphDestroy", graph)  # the executable graph keeps what it needs

    def graph_launch(self, graph: Any, stream: Any) -> None:
        self._call("cudaGraphLaunch", graph, stream)

    def graph_destroy(self, graph: Any) -> None:
        self._call("cudaGraphExecDestroy", graph)

    def close(self) -> None:
        return None


class _NoGraphs:
    """For bindings without CUDA graph capture: every graph call says which binding has it."""

    name: str

    def capture_begin(self, stream: Any) -> None:
        raise CudaError(f"CUDA graphs need cuda-python (pip install 'cosep-deploy[cuda12]'), not {self.name}")

    def capture_end(self, stream: Any) -> Any:
        self.capture_begin(stream)

    def graph_launch(self, graph: Any, stream: Any) -> None:
        self.capture_begin(stream)

    def graph_destroy(self, graph: Any) -> None:
        return None


class PyCuda(_NoGraphs):
    """:class:`CudaApi` over PyCUDA (common on Jetson images). Shares the device's primary context with
    TensorRT. CUDA graphs are not offered here: use cuda-python for them."""

    name = "pycuda"
    supports_graphs = False

    def __init__(self, driver: ModuleType | Any, index: int = 0) -> None:
        self.drv = driver
        driver.init()
        self._dev = driver.Device(index)
        self._ctx = self._dev.retain_primary_context()
        self._ctx.push()
        self._allocs: dict[int, Any] = {}

    def device(self, index: int) -> DeviceInfo:
        major, minor = self._dev.compute_capability()
        sms = self._dev.get_attribute(self.drv.device_attribute.MULTIPROCESSOR_COUNT)
        return DeviceInfo(
            name=str(self._dev.name()),
            compute_capability=f"{major}.{minor}",
            sm_count=int(sms),
            memory_bytes=int(self._dev.total_memory()),
        )

    def malloc(self, nbytes: int) -> int:
        alloc = self.drv.mem_alloc(max(nbytes, 1))
        self._allocs[int(alloc)] = alloc  # keep the DeviceAllocation alive, PyCUDA frees on collection
        return int(alloc)

    def free(self, ptr: int) -> None:
        self._allocs.pop(ptr).free()

    def copy_htod(self, ptr: int, host: np.ndarray, stream: Any) -> None:
        # PyCUDA's async copies need page-locked memory; these copies are outside every timed region
        stream.synchronize()
        self.drv.memcpy_htod(ptr, host)

    def copy_dtoh(self, host: np.ndarray, ptr: int, stream: Any) -> None:
        stream.synchronize()
        self.drv.memcpy_dtoh(host, ptr)

    def stream_create(self) -> Any:
        return self.drv.Stream()

    def stream_handle(self, stream: Any) -> int:
        return int(stream.handle)

    def stream_sync(self, stream: Any) -> None:
        stream.synchronize()

    def stream_destroy(self, stream: Any) -> None:
        return None

    def event_create(self) -> Any:
        return self.drv.Event()

    def event_record(self, event: Any, stream: Any) -> None:
        event.record(stream)

    def elapsed_ms(self, start: Any, end: Any) -> float:
        end.synchronize()
        return float(end.time_since(start))

    def event_destroy(self, event: Any) -> None:
        return None

    def close(self) -> None:
        for alloc in self._allocs.values():
            alloc.free()
        self._allocs.clear()
        self._ctx.pop()


class TorchCuda(_NoGraphs):
    """:class:`CudaApi` over torch's CUDA API, the last resort when neither cuda-python nor PyCUDA can reach the
    GPU. Buffers are ``uint8`` tensors; copies go through pinned-free host tensors outside every timed region.
    No CUDA graphs here (use cuda-python for them)."""

    name = "torch"
    supports_graphs = False

    def __init__(self, torch_module: ModuleType | Any, index: int = 0) -> None:
        self.torch: Any = torch_module
        if not torch_module.cuda.is_available():
            raise CudaError("torch reports no usable CUDA device (torch.cuda.is_available() is False)")
        self.index = index
        self._mem: dict[int, Any] = {}

    def device(self, index: int) -> DeviceInfo:
        if index >= self.torch.cuda.device_count():
            raise CudaError(f"CUDA device {index} requested but torch sees {self.torch.cuda.device_count()}")
        props = self.torch.cuda.get_device_properties(index)
        return DeviceInfo(
            name=str(props.name),
            compute_capability=f"{props.major}.{props.minor}",
            sm_count=int(props.multi_processor_count),
            memory_bytes=int(props.total_memory),
        )

    def malloc(self, nbytes: int) -> int:
        buf = self.torch.empty(max(nbytes, 1), dtype=self.torch.uint8, device=f"cuda:{self.index}")
        self._mem[int(buf.data_ptr())] = buf
        return int(buf.data_ptr())

    def free(self, ptr: int) -> None:
        del self._mem[ptr]

    def copy_htod(self, ptr: int, host: np.ndarray, stream: Any) -> None:
        src = self.torch.from_numpy(np.ascontiguousarray(host).reshape(-1).view(np.uint8))
        with self.torch.cuda.stream(stream):
            self._mem[ptr][: host.nbytes].copy_(src)

    def copy_dtoh(self, host: np.ndarray, ptr: int, stream: Any) -> None:
        stream.synchronize()
        host.reshape(-1).view(np.uint8)[:] = self._mem[ptr][: host.nbytes].cpu().numpy()

    def stream_create(self) -> Any:
        return self.torch.cuda.Stream(device=self.index)

    def stream_handle(self, stream: Any) -> int:
        return int(stream.cuda_stream)

    def stream_sync(self, stream: Any) -> None:
        stream.synchronize()

    def stream_destroy(self, stream: Any) -> None:
        return None

    def event_create(self) -> Any:
        return self.torch.cuda.Event(enable_timing=True)

    def event_record(self, event: Any, stream: Any) -> None:
        event.record(stream)

    def elapsed_ms(self, start: Any, end: Any) -> float:
        end.synchronize()
        return float(start.elapsed_time(end))

    def event_destroy(self, event: Any) -> None:
        return None

    def close(self) -> None:
        self._mem.clear()


def _open_binding(module: str, device: int) -> CudaApi:
    """The :class:`CudaApi` over ``module`` (one of :data:`BINDINGS`); raises CudaError if it cannot start."""
    mod = require(module)
    try:
        if module == "pycuda.driver":
            return PyCuda(mod, device)
        if module == "torch":
            return TorchCuda(mod, device)
        return CudaPython(mod)
    except CudaError:
        raise
    except Exception as exc:  # PyCUDA raises its own LogicError/RuntimeError when the driver is missing
        raise CudaError(f"{module} could not initialise CUDA: {exc}") from exc


def cuda_api(device: int = 0) -> CudaApi:
    """The first binding of :data:`BINDINGS` that is installed *and* answers for GPU ``device``.

    Raises :class:`MissingDependencyError` when none is installed, and :class:`CudaError` naming what each
    installed binding said when none could reach the GPU (no driver, a driver too old for the binding...).
    """
    reasons: list[str] = []
    installed = False
    for module in BINDINGS:
        if not is_available(module):
            continue
        installed = True
        api: CudaApi | None = None
        try:
            api = _open_binding(module, device)
            api.device(device)  # the probe: does this binding reach the GPU?
        except CudaError as exc:
            if api is not None:
                api.close()
            reasons.append(f"{module}: {exc}")
            continue
        return api
    if not installed:
        raise MissingDependencyError(
            "running TensorRT engines from Python needs CUDA bindings: pip install 'cosep-deploy[cuda12]' "
            "(cuda-python for CUDA 12; cuda11/cuda13 for other CUDA majors), or PyCUDA on Jetson (pip install pycuda)"
        )
    raise CudaError(f"no CUDA binding could reach GPU {device}: " + " | ".join(reasons))


def device_info(index: int = 0) -> DeviceInfo:
    """Name, compute capability, SM count and memory of CUDA device ``index`` through the first binding that
    answers (cuda-python, PyCUDA, then torch)."""
    api = cuda_api(index)
    try:
        return api.device(index)
    finally:
        api.close()
