"""Eager PyTorch as a runner: the framework baseline next to ONNX Runtime and TensorRT.

The runner works on its own copy of the model (the caller's module is never moved, cast or switched to
eval), runs it under ``torch.inference_mode``, and names its input ``input`` and output ``logits`` like
the ONNX export, so :func:`cosep_deploy.compare.compare_runners` can put it beside any other runner.

- fp16 is CUDA only (``torch.autocast``: convolutions and matmuls in fp16, reductions and softmax in
  fp32, the same split as the fp16 ONNX); CPU half precision is slow and not what any target runs.
- fp32 on CUDA is IEEE fp32 (``tf32=False``): cuDNN would otherwise use TF32 for convolutions on Ampere and
  later GPUs, which is not what an fp32 ONNX reference computes. Like the CPU thread count, this is a
  process-wide setting, set while the runner is active and restored after.
- On CUDA, ``cuda_graphs=True`` captures one ``torch.cuda.CUDAGraph`` per input shape after a warm-up on a
  side stream and replays it, as TensorRT and trtexec do, to take launch overhead out of the timing.
- ``time_once`` times with CUDA events around the kernels (host-device copies excluded) on CUDA, and with
  ``perf_counter`` around the whole call on CPU (numpy in and out, like the ONNX Runtime runner).
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from cosep_deploy.backends.base import Runner, RunnerInfo, TimedRun, process_memory
from cosep_deploy.errors import ConfigError, EngineLoadError

__all__ = ["TorchRunner", "cuda_event_timed", "output_tuple"]


class TorchRunner(Runner):
    """Run an ``nn.Module`` eagerly on CPU or one CUDA device."""

    concurrent_safe = True  # inference-mode forward passes share no mutable state (CUDA graphs excepted)

    def __init__(
        self,
        model: nn.Module,
        *,
        device: str = "cpu",
        precision: str = "fp32",
        threads: int | None = None,
        cuda_graphs: bool = False,
        channels_last: bool = False,
        tf32: bool = False,
        warmup: int = 3,
        input_name: str = "input",
        output_names: Sequence[str] = ("logits",),
        input_shape: Sequence[int] | None = None,
        name: str | None = None,
    ) -> None:
        try:
            self.device = torch.device(device)
        except RuntimeError as exc:
            raise ConfigError(f"invalid torch device {device!r}: use 'cpu', 'cuda' or 'cuda:N'") from exc
        if self.device.type not in ("cpu", "cuda"):
            raise ConfigError(f"TorchRunner runs on 'cpu' or 'cuda', not {device!r}")
        if precision not in ("fp32", "fp16"):
            raise ConfigError(
                f"TorchRunner runs fp32 or fp16, not {precision!r}: run the int8 ONNX with ONNX Runtime or TensorRT"
            )
        on_cuda = self.device.type == "cuda"
        if precision == "fp16" and not on_cuda:
            raise ConfigError("fp16 in PyTorch is CUDA only here: pass device='cuda' or use precision='fp32'")
        if (cuda_graphs or tf32) and not on_cuda:
            raise ConfigError("CUDA graphs and TF32 need device='cuda'")
        self.model, self.precision, self.cuda_graphs = model, precision, cuda_graphs
        self.concurrent_safe = not cuda_graphs  # a captured graph replays into one set of static buffers
        self.threads = threads or min(os.cpu_count() or 1, 2)
        self.channels_last, self.tf32, self.warmup = channels_last, tf32, max(warmup, 1)
        self.input_name, self.output_names = input_name, tuple(output_names)
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.name = name or type(model).__name__
        self._module: nn.Module | None = None
        self._saved_threads: int | None = None
        self._saved_fp32_precision: tuple[str, str] | None = None
        # per (shape, dtype): the graph, its static input and its static outputs
        self._graphs: dict[tuple[Any, ...], tuple[Any, torch.Tensor, tuple[torch.Tensor, ...]]] = {}

    def activate(self) -> None:
        if self._module is not None:
            return
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise EngineLoadError(f"{self.device} requested but CUDA is not available (torch.cuda.is_available())")
        if self.device.type == "cpu":
            # torch's thread count is process-wide: set it for this runner's life, restore it after
            self._saved_threads = torch.get_num_threads()
            torch.set_num_threads(self.threads)
        else:
            # cuDNN convolutions default to TF32 on Ampere and later: fp32 means IEEE fp32 unless asked
            conv, matmul = _fp32_precision_flags()
            self._saved_fp32_precision = (conv.fp32_precision, matmul.fp32_precision)
            conv.fp32_precision = matmul.fp32_precision = "tf32" if self.tf32 else "ieee"
        module = copy.deepcopy(self.model).eval().to(self.device)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        self._module = module

    def deactivate(self) -> None:
        self._graphs.clear()
        self._module = None
        if self._saved_threads is not None:
            torch.set_num_threads(self._saved_threads)
            self._saved_threads = None
        if self._saved_fp32_precision is not None:
            conv, matmul = _fp32_precision_flags()
            conv.fp32_precision, matmul.fp32_precision = self._saved_fp32_precision
            self._saved_fp32_precision = None
        if self.device.type == "cuda" and torch.cuda.is_available():
            torch.cuda.empty_cache()

    @property
    def module(self) -> nn.Module:
        if self._module is None:
            self.activate()
        assert self._module is not None  # activate() sets it or raises
        return self._module

    def info(self) -> RunnerInfo:
        on_cuda = self.device.type == "cuda"
        return RunnerInfo(
            backend="torch",
            runtime_version=str(torch.__version__),
            device=torch.cuda.get_device_name(self.device) if on_cuda and torch.cuda.is_available() else "cpu",
            precision=self.precision,
            settings={
                "device": str(self.device),
                "threads": None if on_cuda else self.threads,
                "cuda_graphs": self.cuda_graphs,
                "channels_last": self.channels_last,
                "tf32": self.tf32,
                "autocast": self.precision == "fp16",
                "inference_mode": True,
            },
            input_names=(self.input_name,),
            output_names=self.output_names,
            input_shapes={self.input_name: ("batch", *self.input_shape)} if self.input_shape else {},
        )

    def memory(self) -> dict[str, Any] | None:
        """The active module's parameters and buffers (bytes), and on CUDA the device memory PyTorch's caching
        allocator holds and its peak; on CPU the process's resident set and its peak. The device and process
        figures cover everything in the process, not this runner alone."""
        if self._module is None:
            return None
        tensors = [*self._module.parameters(), *self._module.buffers()]
        out: dict[str, Any] = {"parameter_bytes": sum(t.numel() * t.element_size() for t in tensors)}
        if self.device.type == "cuda":
            out["device_allocated_bytes"] = int(torch.cuda.memory_allocated(self.device))
            out["device_peak_allocated_bytes"] = int(torch.cuda.max_memory_allocated(self.device))
        elif (proc := process_memory()) is not None:
            out["process_rss_bytes"] = proc["rss_bytes"]
            out["process_peak_rss_bytes"] = proc["peak_rss_bytes"]
        return out

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self._run(self._to_device(feed))
        return {n: t.detach().float().cpu().numpy() for n, t in zip(self.output_names, outputs, strict=True)}

    def time_once(self, feed: Mapping[str, np.ndarray]) -> TimedRun:
        if self.device.type != "cuda":
            return super().time_once(feed)
        x = self._to_device(feed)  # the copy in stays outside the timed region
        events = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        return cuda_event_timed(self.device, events, lambda: self._run(x))

    def _to_device(self, feed: Mapping[str, np.ndarray]) -> torch.Tensor:
        if self.input_name not in feed:
            raise ConfigError(f"input {self.input_name!r} missing from the feed (it has: {', '.join(feed) or 'none'})")
        x = torch.from_numpy(np.ascontiguousarray(feed[self.input_name], dtype=np.float32)).to(self.device)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.ndim == 4 else x

    def _run(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if not self.cuda_graphs:
            return self._forward(x)
        graph, static_in, static_out = self._graph_for(x)
        static_in.copy_(x)
        graph.replay()
        return tuple(t.clone() for t in static_out)  # the next replay overwrites the static outputs

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.inference_mode(), self._autocast():
            out = self.module(x)
        return output_tuple(out, self.output_names)

    def _autocast(self) -> Any:
        if self.precision != "fp16":
            return contextlib.nullcontext()  # a disabled CUDA autocast still warns on machines without CUDA
        # cache_enabled=False: autocast's weight-cast cache must not outlive a CUDA graph capture
        return torch.autocast("cuda", dtype=torch.float16, cache_enabled=False)

    def _graph_for(self, x: torch.Tensor) -> tuple[Any, torch.Tensor, tuple[torch.Tensor, ...]]:
        """GPU only (tested under ``@pytest.mark.gpu``): capture once per input shape, after a warm-up on a
        side stream, as PyTorch's CUDA graph notes prescribe."""
        key = (tuple(x.shape), x.dtype)
        if key not in self._graphs:
            static_in = x.clone()
            side = torch.cuda.Stream(device=self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(self.warmup):
                    self._forward(static_in)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self._forward(static_in)
            self._graphs[key] = (graph, static_in, static_out)
        return self._graphs[key]


def _fp32_precision_flags() -> tuple[Any, Any]:
    """PyTorch's fp32 math settings for cuDNN convolutions and CUDA matmuls (``"ieee"`` or ``"tf32"``)."""
    cudnn: Any = torch.backends.cudnn  # its ``conv`` namespace is attached at run time, unknown to the stubs
    return cudnn.conv, torch.backends.cuda.matmul


def cuda_event_timed(
    device: torch.device, events: tuple[torch.cuda.Event, torch.cuda.Event], call: Callable[[], object]
) -> TimedRun:
    """Device time of ``call`` between two CUDA events on the current stream, the device idle before and after."""
    start, end = events
    torch.cuda.synchronize(device)
    start.record()
    call()
    end.record()
    torch.cuda.synchronize(device)
    return TimedRun(start.elapsed_time(end) / 1000.0, includes_copies=False)


def output_tuple(out: Any, output_names: Sequence[str]) -> tuple[torch.Tensor, ...]:
    """A module's result as a tuple of tensors, one per declared output name (a user error otherwise)."""
    outputs = (out,) if isinstance(out, torch.Tensor) else tuple(out)
    if len(outputs) != len(output_names):
        raise ConfigError(
            f"the model returns {len(outputs)} outputs but output_names has {len(output_names)}: "
            f"{', '.join(output_names)}"
        )
    return outputs
