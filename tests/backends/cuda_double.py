"""A double of cuda-python's runtime bindings (``cuda.bindings.runtime``) on a :class:`~tests.backends.trt_double.Gpu`.

From the CUDA runtime API's documentation: every call returns ``(cudaError_t, *results)``; device memory is
real host memory at real addresses (so ``cudaMemcpyAsync`` moves real bytes, and a copy outside an allocation
is ``cudaErrorInvalidValue``); work on a stream that is being captured is recorded, not run, until
``cudaGraphLaunch``; synchronising a capturing stream is ``cudaErrorStreamCaptureUnsupported``; the capture
mode each capture used is recorded. ``driver_ok=False`` on the GPU answers ``cudaErrorInsufficientDriver``
(what cuda-python 13 says on a driver older than 580).
"""

from __future__ import annotations

import ctypes
import enum
import importlib.machinery
import types
from typing import Any

__all__ = ["make_cuda_runtime"]


class cudaError_t(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorMemoryAllocation = 2
    cudaErrorInsufficientDriver = 35
    cudaErrorInvalidDevice = 101
    cudaErrorInvalidResourceHandle = 400
    cudaErrorStreamCaptureUnsupported = 900
    cudaErrorStreamCaptureInvalidated = 901


class cudaMemcpyKind(enum.IntEnum):
    cudaMemcpyHostToHost = 0
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2
    cudaMemcpyDeviceToDevice = 3


class cudaStreamCaptureMode(enum.IntEnum):
    cudaStreamCaptureModeGlobal = 0
    cudaStreamCaptureModeThreadLocal = 1
    cudaStreamCaptureModeRelaxed = 2


class _Handle:
    """cudaStream_t / cudaEvent_t / cudaGraphExec_t: opaque objects that convert to their address."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __int__(self) -> int:
        return self.value


def make_cuda_runtime(gpu: Any) -> types.ModuleType:
    """A fresh ``cuda.bindings.runtime`` module on ``gpu``."""
    E = cudaError_t
    ok = E.cudaSuccess
    events: dict[int, bool] = {}  # event -> recorded
    graphs: dict[int, list[Any]] = {}
    execs: dict[int, list[Any]] = {}

    def driver() -> E | None:
        return None if gpu.driver_ok else E.cudaErrorInsufficientDriver

    def cudaGetDeviceCount() -> tuple[Any, int]:
        return (driver() or ok, 0 if driver() else 1)

    def cudaSetDevice(device: int) -> tuple[Any]:
        return (driver() or (ok if device == 0 else E.cudaErrorInvalidDevice),)

    def cudaGetDeviceProperties(device: int) -> tuple[Any, Any]:
        if driver() or device != 0:
            return (driver() or E.cudaErrorInvalidDevice, None)
        props = types.SimpleNamespace(
            name=gpu.name.encode() + b"\x00" * 8,
            major=gpu.capability[0],
            minor=gpu.capability[1],
            multiProcessorCount=gpu.sm_count,
            totalGlobalMem=gpu.memory_bytes,
        )
        return (ok, props)

    def cudaGetErrorString(error: Any) -> tuple[Any, bytes]:
        return (ok, f"{E(error).name}".encode())

    def cudaMalloc(size: int) -> tuple[Any, int]:
        if size <= 0:
            return (E.cudaErrorInvalidValue, 0)
        buf = (ctypes.c_uint8 * size)()
        gpu.allocations[ctypes.addressof(buf)] = buf
        return (ok, ctypes.addressof(buf))

    def cudaFree(devPtr: int) -> tuple[Any]:
        return (ok,) if gpu.allocations.pop(int(devPtr), None) is not None else (E.cudaErrorInvalidValue,)

    def cudaMemcpyAsync(dst: int, src: int, count: int, kind: Any, stream: Any) -> tuple[Any]:
        device_side = {cudaMemcpyKind.cudaMemcpyHostToDevice: [dst], cudaMemcpyKind.cudaMemcpyDeviceToHost: [src]}
        for ptr in device_side.get(cudaMemcpyKind(kind), [dst, src]):
            if not gpu.region(int(ptr), int(count)):
                return (E.cudaErrorInvalidValue,)
        if int(stream) not in gpu.streams:
            return (E.cudaErrorInvalidResourceHandle,)
        gpu.submit(int(stream), lambda: ctypes.memmove(int(dst), int(src), int(count)))
        return (ok,)

    def cudaStreamCreate() -> tuple[Any, Any]:
        handle = gpu.handle()
        gpu.streams.add(handle)
        return (ok, _Handle(handle))

    def cudaStreamSynchronize(stream: Any) -> tuple[Any]:
        if int(stream) in gpu.capturing:
            gpu.capturing.pop(int(stream))  # the capture is invalidated
            return (E.cudaErrorStreamCaptureUnsupported,)
        return (ok,) if int(stream) in gpu.streams else (E.cudaErrorInvalidResourceHandle,)

    def cudaStreamDestroy(stream: Any) -> tuple[Any]:
        gpu.streams.discard(int(stream))
        return (ok,)

    def cudaEventCreate() -> tuple[Any, Any]:
        handle = gpu.handle()
        events[handle] = False
        return (ok, _Handle(handle))

    def cudaEventRecord(event: Any, stream: Any) -> tuple[Any]:
        if int(event) not in events or int(stream) not in gpu.streams:
            return (E.cudaErrorInvalidResourceHandle,)
        events[int(event)] = True
        return (ok,)

    def cudaEventSynchronize(event: Any) -> tuple[Any]:
        return (ok,) if int(event) in events else (E.cudaErrorInvalidResourceHandle,)

    def cudaEventElapsedTime(start: Any, end: Any) -> tuple[Any, float]:
        if not (events.get(int(start)) and events.get(int(end))):
            return (E.cudaErrorInvalidResourceHandle, 0.0)
        return (ok, 1.5)

    def cudaEventDestroy(event: Any) -> tuple[Any]:
        events.pop(int(event), None)
        return (ok,)

    def cudaStreamBeginCapture(stream: Any, mode: Any) -> tuple[Any]:
        if int(stream) not in gpu.streams or int(stream) in gpu.capturing:
            return (E.cudaErrorInvalidValue,)
        gpu.capture_modes.append(cudaStreamCaptureMode(mode).name)
        gpu.capturing[int(stream)] = []
        return (ok,)

    def cudaStreamEndCapture(stream: Any) -> tuple[Any, Any]:
        if int(stream) not in gpu.capturing:
            return (E.cudaErrorStreamCaptureInvalidated, None)
        handle = gpu.handle()
        graphs[handle] = gpu.capturing.pop(int(stream))
        return (ok, _Handle(handle))

    def cudaGraphInstantiate(graph: Any, flags: int) -> tuple[Any, Any]:
        if int(graph) not in graphs:
            return (E.cudaErrorInvalidValue, None)
        handle = gpu.handle()
        execs[handle] = list(graphs[int(graph)])
        return (ok, _Handle(handle))

    def cudaGraphDestroy(graph: Any) -> tuple[Any]:
        return (ok,) if graphs.pop(int(graph), None) is not None else (E.cudaErrorInvalidValue,)

    def cudaGraphLaunch(graphExec: Any, stream: Any) -> tuple[Any]:
        if int(graphExec) not in execs or int(stream) not in gpu.streams:
            return (E.cudaErrorInvalidResourceHandle,)
        gpu.graph_launches += 1
        for work in execs[int(graphExec)]:
            gpu.submit(int(stream), work)
        return (ok,)

    def cudaGraphExecDestroy(graphExec: Any) -> tuple[Any]:
        return (ok,) if execs.pop(int(graphExec), None) is not None else (E.cudaErrorInvalidValue,)

    rt = types.ModuleType("cuda.bindings.runtime")
    rt.__file__ = "/double/cuda/bindings/runtime.py"
    rt.__spec__ = importlib.machinery.ModuleSpec("cuda.bindings.runtime", None)
    namespace = dict(locals())
    for name, value in namespace.items():
        if name.startswith("cuda"):
            setattr(rt, name, value)
    rt.cudaError_t = cudaError_t  # type: ignore[attr-defined]
    rt.cudaMemcpyKind = cudaMemcpyKind  # type: ignore[attr-defined]
    rt.cudaStreamCaptureMode = cudaStreamCaptureMode  # type: ignore[attr-defined]
    return rt
