"""Run a serialized TensorRT engine: :class:`TensorRTRunner`, and the logger the build side shares.

The runner uses the name-based tensor API (TensorRT 10.0 removed bindings and ``execute_async_v2``):
``num_io_tensors``, ``get_tensor_name/mode/dtype``, ``set_input_shape``, ``set_tensor_address`` and
``execute_async_v3``. ``tensorrt`` is imported inside the functions that run it (after :func:`require`, which
turns a missing install, or one holding only the type stubs, into a clear error); the module-level import under
``TYPE_CHECKING`` gives mypy the ``tensorrt-stubs`` types for annotations without importing anything at run time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cosep_deploy.backends.base import Runner, RunnerInfo, TimedRun
from cosep_deploy.backends.tensorrt.cuda import CudaApi, cuda_api
from cosep_deploy.deps import require
from cosep_deploy.engines.manifest import EngineManifest, check_manifest_against, manifest_path_for, verify_engine_file
from cosep_deploy.errors import ConfigError, EngineLoadError
from cosep_deploy.verbosity import get_logger

if TYPE_CHECKING:
    import tensorrt as trt

__all__ = ["Progress", "TensorRTRunner", "collecting_logger", "dims_tuple", "logged_errors"]

Progress = Callable[[str], None]
trt_log = get_logger("tensorrt")


def collecting_logger(progress: Progress | None = None) -> tuple[trt.ILogger, list[str]]:
    """A TensorRT logger, and the list it appends error messages to (for our exception messages); warnings
    go to ``progress``; INFO and VERBOSE messages go to the ``cosep_deploy.tensorrt`` Python logger (shown with
    ``-v`` and ``-vv``). TensorRT hands a custom ``ILogger`` every message and leaves the filtering to it (the
    ``min_severity`` of its built-in ``trt.Logger``): here the Python logger's level is the filter. Call after
    ``require("tensorrt")``."""
    import tensorrt as trt

    errors: list[str] = []
    passed_on = {trt.ILogger.INFO: logging.INFO, trt.ILogger.VERBOSE: logging.DEBUG}

    class CollectingLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)  # TensorRT's docs: initialise the base class explicitly

        def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
            if severity in (trt.ILogger.INTERNAL_ERROR, trt.ILogger.ERROR):
                errors.append(msg)
            elif severity == trt.ILogger.WARNING:
                if progress is not None:
                    progress(f"TensorRT: {msg}")
                else:  # no progress to show it on: with -v
                    trt_log.info("warning: %s", msg)
            elif severity in passed_on and trt_log.isEnabledFor(passed_on[severity]):
                trt_log.log(passed_on[severity], "%s", msg)

    return CollectingLogger(), errors


def logged_errors(errors: list[str]) -> str:
    """The last few messages a :func:`collecting_logger` kept, for an exception message."""
    return "; ".join(errors[-5:]) or "no error message from TensorRT"


def dims_tuple(dims: trt.Dims) -> tuple[int, ...]:
    """A ``trt.Dims`` as a tuple. Indexed rather than iterated: the stubs give ``Dims`` ``__len__`` and
    ``__getitem__`` but no ``__iter__`` (iteration works at run time through the sequence protocol)."""
    return tuple(int(dims[i]) for i in range(len(dims)))


class TensorRTRunner(Runner):
    """Run a serialized engine with the name-based tensor API (``execute_async_v3``).

    Entering checks the engine file against its manifest (sha256, TensorRT release, GPU), deserializes it and
    creates a stream. ``time_once`` measures device time between CUDA events around the enqueue (or the CUDA
    graph launch): host-device copies are excluded, and :class:`TimedRun` says so.
    """

    def __init__(
        self,
        engine_path: str | os.PathLike[str],
        *,
        cuda_graph: bool = False,
        check_target: bool = True,
        device: int = 0,
        cuda: CudaApi | None = None,
        precision: str | None = None,
    ) -> None:
        self.engine_path = Path(engine_path)
        self.precision = precision  # what the engine was built at, where no manifest says it (trtexec's engines)
        self.cuda_graph, self.check_target, self.device = cuda_graph, check_target, device
        self._cuda_given = cuda
        self._manifest: EngineManifest | None = None
        self._reset()

    def _reset(self) -> None:
        # drop the context before the engine and the engine before its runtime
        self._context: trt.IExecutionContext | None = None
        self._engine: trt.ICudaEngine | None = None
        self._runtime: trt.Runtime | None = None
        self._logger: trt.ILogger | None = None
        self._log_errors: list[str] = []
        self._trt_version = ""
        self._cuda: CudaApi | None = self._cuda_given
        # streams, events and graphs are opaque handles of whichever CUDA binding CudaApi wraps
        self._stream: Any = None
        self._events: tuple[Any, ...] = ()
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (pointer, capacity in bytes)
        self._graph: Any = None
        self._graph_key: tuple[Any, ...] | None = None
        self._device_name = ""
        self._inputs: tuple[str, ...] = ()
        self._outputs: tuple[str, ...] = ()
        self._dtypes: dict[str, np.dtype[Any]] = {}

    def activate(self) -> None:
        try:
            self._load()
        except BaseException:
            self.deactivate()  # __exit__ does not run when __enter__ raises
            raise

    def _load(self) -> None:
        manifest_file = manifest_path_for(self.engine_path)
        if manifest_file.is_file():
            self._manifest = EngineManifest.load(manifest_file)
            verify_engine_file(self._manifest, self.engine_path)  # before TensorRT touches the bytes
        elif self.check_target:
            raise EngineLoadError(
                f"no manifest {manifest_file.name} beside {self.engine_path}: cannot tell where this engine can "
                "run; rebuild it with cosep-deploy, or pass check_target=False to load it anyway"
            )
        elif not self.engine_path.is_file():
            raise EngineLoadError(f"engine file {self.engine_path} not found")
        require("tensorrt", purpose="running TensorRT engines")
        import tensorrt as trt

        self._trt_version = trt.__version__
        cuda = self._cuda = self._cuda or cuda_api(self.device)
        dev = cuda.device(self.device)
        self._device_name = dev.name
        if self.check_target and self._manifest is not None:
            from cosep_deploy.backends.tensorrt.identity import device_identity

            here = device_identity(dev, trt.__version__).manifest_fields()
            check_manifest_against(
                self._manifest,
                runtime_version=trt.__version__,
                device_name=dev.name,
                compute_capability=dev.compute_capability,
                identity=here,
            )
        if self.cuda_graph and not cuda.supports_graphs:
            raise ConfigError(f"CUDA graphs are not available through {cuda.name}; install cuda-python")
        trt_log.info("deserializing %s with TensorRT %s on %s", self.engine_path, trt.__version__, dev.name)
        self._logger, self._log_errors = collecting_logger()
        self._runtime = trt.Runtime(self._logger)
        dla_core = self._manifest.dla_core if self._manifest is not None else None
        if dla_core is not None:  # the runtime, not the engine, says which DLA core runs a DLA engine
            self._runtime.DLA_core = dla_core
        # the stubs say ICudaEngine, but TensorRT returns None for bytes it cannot deserialize
        engine: trt.ICudaEngine | None = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if engine is None:
            raise EngineLoadError(f"TensorRT cannot deserialize {self.engine_path}: {self._errors()}")
        self._engine = engine
        self._context = engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self._inputs = tuple(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self._outputs = tuple(n for n in names if n not in self._inputs)
        self._dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in names}
        self._stream = cuda.stream_create()
        self._events = (cuda.event_create(), cuda.event_create())

    def deactivate(self) -> None:
        cuda = self._cuda
        if cuda is not None:
            if self._graph is not None:
                cuda.graph_destroy(self._graph)
            for ptr, _ in self._buffers.values():
                cuda.free(ptr)
            for event in self._events:
                cuda.event_destroy(event)
            if self._stream is not None:
                cuda.stream_destroy(self._stream)
            if self._cuda_given is None:
                cuda.close()
        self._reset()

    def memory(self) -> dict[str, Any] | None:
        """The engine file's size and the device memory an execution context needs (activations, scratch):
        ``device_memory_size_v2`` on TensorRT 10+ (it includes weight-streaming scratch), else the v1 value."""
        if self._engine is None:
            return None
        engine = self._engine
        device_bytes = engine.device_memory_size_v2 if hasattr(engine, "device_memory_size_v2") else None
        if device_bytes is None:
            device_bytes = engine.device_memory_size
        return {"engine_file_bytes": self.engine_path.stat().st_size, "context_device_memory_bytes": int(device_bytes)}

    def info(self) -> RunnerInfo:
        m = self._manifest
        return RunnerInfo(
            backend="tensorrt",
            runtime_version=self._trt_version or (m.runtime_version if m else "unknown"),
            device=self._device_name or (m.device_name if m else "unknown"),
            precision=m.precision if m else self.precision or "unknown",
            settings={
                "cuda_graph": self.cuda_graph,
                "timer": "cuda-events",
                "includes_copies": False,
                "cuda_api": self._cuda.name if self._cuda else "",
                "dla_core": m.dla_core if m else None,
            },
            input_names=self._inputs,
            output_names=self._outputs,
            input_shapes=self._input_shapes(),
        )

    def _input_shapes(self) -> dict[str, tuple[Any, ...]]:
        """Each input's shape as the engine declares it, a dynamic dim (-1) named "dynamic" (the contract of
        :class:`RunnerInfo`: symbolic dims as strings); empty before the engine is loaded."""
        if self._engine is None:
            return {}
        shapes = {n: dims_tuple(self._engine.get_tensor_shape(n)) for n in self._inputs}
        return {n: tuple("dynamic" if d < 0 else d for d in s) for n, s in shapes.items()}

    def _errors(self) -> str:
        return logged_errors(self._log_errors)

    def _require_active(self) -> tuple[CudaApi, trt.ICudaEngine, trt.IExecutionContext]:
        if self._context is None or self._engine is None or self._cuda is None:
            raise EngineLoadError("TensorRTRunner is not active: use it as a context manager (with ...:)")
        return self._cuda, self._engine, self._context

    def _buffer(self, name: str, nbytes: int) -> int:
        cuda, _, _ = self._require_active()
        ptr, capacity = self._buffers.get(name, (0, -1))
        if nbytes > capacity:  # grow only; a smaller batch reuses the buffer
            if capacity >= 0:
                cuda.free(ptr)
            ptr, capacity = cuda.malloc(nbytes), nbytes
            self._buffers[name] = (ptr, capacity)
        return ptr

    def _prepare(self, feed: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
        """Set shapes and addresses, start the input copies; return empty host outputs and the inputs kept
        alive until the stream synchronizes."""
        cuda, engine, context = self._require_active()
        if set(feed) != set(self._inputs):
            raise ConfigError(f"engine inputs are {list(self._inputs)}, the feed has {sorted(feed)}")
        kept = []
        for name in self._inputs:
            arr = np.ascontiguousarray(feed[name], dtype=self._dtypes[name])
            if not context.set_input_shape(name, arr.shape):
                lo, _, hi = engine.get_tensor_profile_shape(name, 0)
                raise ConfigError(
                    f"input {name!r} shape {arr.shape} is outside the engine's profile "
                    f"{dims_tuple(lo)} .. {dims_tuple(hi)}; rebuild with a wider batch range"
                )
            ptr = self._buffer(name, arr.nbytes)
            context.set_tensor_address(name, ptr)
            cuda.copy_htod(ptr, arr, self._stream)
            kept.append(arr)
        outputs = {}
        for name in self._outputs:
            shape = dims_tuple(context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise EngineLoadError(f"output {name!r} has a data-dependent shape {shape}: not supported here")
            outputs[name] = np.empty(shape, dtype=self._dtypes[name])
            context.set_tensor_address(name, self._buffer(name, outputs[name].nbytes))
        return outputs, kept

    def _execute(self) -> None:
        cuda, _, context = self._require_active()
        if not context.execute_async_v3(cuda.stream_handle(self._stream)):
            raise EngineLoadError(f"TensorRT could not run {self.engine_path.name}: {self._errors()}")

    def _ensure_graph(self) -> None:
        """Capture the enqueue into a CUDA graph unless one for these shapes and buffers exists."""
        cuda, _, context = self._require_active()
        key = tuple(
            (n, dims_tuple(context.get_tensor_shape(n)), self._buffers[n][0]) for n in self._inputs + self._outputs
        )
        if key == self._graph_key:
            return
        if self._graph is not None:  # new shapes or buffers: the old graph would use stale ones
            cuda.graph_destroy(self._graph)
            self._graph = self._graph_key = None
        # one plain enqueue first lets TensorRT finish its deferred per-shape setup outside the capture
        self._execute()
        cuda.stream_sync(self._stream)
        cuda.capture_begin(self._stream)
        ok = context.execute_async_v3(cuda.stream_handle(self._stream))
        graph = cuda.capture_end(self._stream)
        if not ok:
            cuda.graph_destroy(graph)
            raise EngineLoadError(f"TensorRT enqueue failed during CUDA graph capture: {self._errors()}")
        self._graph, self._graph_key = graph, key

    def _launch(self) -> None:
        if self.cuda_graph:
            cuda, _, _ = self._require_active()
            cuda.graph_launch(self._graph, self._stream)
        else:
            self._execute()

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        cuda, _, _ = self._require_active()
        outputs, _kept = self._prepare(feed)
        if self.cuda_graph:
            self._ensure_graph()
        self._launch()
        for name, host in outputs.items():
            cuda.copy_dtoh(host, self._buffers[name][0], self._stream)
        cuda.stream_sync(self._stream)
        return outputs

    def time_once(self, feed: Mapping[str, np.ndarray]) -> TimedRun:
        """Device time of one enqueue (CUDA events on the runner's stream); copies excluded."""
        cuda, _, _ = self._require_active()
        _outputs, _kept = self._prepare(feed)
        if self.cuda_graph:
            self._ensure_graph()  # capture outside the timed region
        cuda.stream_sync(self._stream)  # input copies finish before the start event
        start, end = self._events
        cuda.event_record(start, self._stream)
        self._launch()
        cuda.event_record(end, self._stream)
        return TimedRun(cuda.elapsed_ms(start, end) / 1e3, includes_copies=False)
