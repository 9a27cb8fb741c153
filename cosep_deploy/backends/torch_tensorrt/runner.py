"""Torch-TensorRT as a runner: the PyTorch model compiled by TensorRT without going through ONNX.

``torch_tensorrt.compile(model, ir="dynamo", inputs=[torch_tensorrt.Input(min_shape=..., opt_shape=...,
max_shape=..., dtype=torch.float32)])`` traces the model with ``torch.export`` over the batch range and
replaces what TensorRT can run by TensorRT engines; the result is called like the module. The runner
compiles its own copy of the model on entering, names its input ``input`` and output ``logits`` like the
ONNX export, and times with CUDA events around the call (host-device copies excluded), as the other GPU
runners do.

Precision, by what the installed release offers (checked on ``torch_tensorrt.dynamo.compile``'s parameters,
not its version string):

- fp32: no precision option; ``tf32`` (TensorRT's default, on) is recorded with the settings.
- fp16: Torch-TensorRT's rule-based autocast (``enable_autocast=True, autocast_low_precision_type=
  torch.float16``) where it exists (2.10 on; from 2.13 the only way, ``enabled_precisions`` is gone from the
  dynamo path); on older releases, such as the 2.8 wheels for JetPack 6, ``enabled_precisions={float16,
  float32}`` lets TensorRT pick fp16 kernels per layer.
- int8: refused. Torch-TensorRT's documented int8 route is NVIDIA ModelOpt's PyTorch quantization
  (``modelopt.torch.quantization``) before compiling; cosep-deploy does not use ModelOpt, and its calibrated
  int8 Q/DQ ONNX runs on TensorRT (``cosep-deploy build``) and ONNX Runtime instead.

``torch_tensorrt`` is imported on entering, through :func:`~cosep_deploy.deps.require`.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any

import numpy as np
import torch
from torch import nn

from cosep_deploy.backends.base import Runner, RunnerInfo, TimedRun
from cosep_deploy.backends.torch.runner import cuda_event_timed, output_tuple
from cosep_deploy.deps import require
from cosep_deploy.errors import ConfigError, EngineBuildError, EngineLoadError

__all__ = ["TorchTensorRTRunner", "compile_device", "precision_options"]


def compile_device(device: torch.device, current: int | None = None) -> torch.device:
    """``device`` with an explicit index. ``torch_tensorrt.Device`` takes a GPU id and fails on
    ``torch.device("cuda")`` (index None, "the current device"), so that is resolved to ``current`` (default:
    ``torch.cuda.current_device()``) before it reaches ``torch_tensorrt.compile``."""
    if device.type != "cuda" or device.index is not None:
        return device
    return torch.device("cuda", torch.cuda.current_device() if current is None else current)


def precision_options(compile_fn: Any, precision: str) -> tuple[str, dict[str, Any]]:
    """The compile options for ``precision`` that ``compile_fn`` (``torch_tensorrt.dynamo.compile``) accepts,
    and the name of the mode chosen (recorded in the runner's settings)."""
    if precision == "fp32":
        return "fp32", {}
    if precision != "fp16":
        raise ConfigError(f"torch-tensorrt precision must be fp32 or fp16, found {precision!r}")
    params = inspect.signature(compile_fn).parameters
    if "enable_autocast" in params:
        return "autocast-fp16", {"enable_autocast": True, "autocast_low_precision_type": torch.float16}
    if "enabled_precisions" in params:
        return "enabled-precisions-fp16", {"enabled_precisions": {torch.float16, torch.float32}}
    raise EngineBuildError(
        "this torch_tensorrt offers neither enable_autocast nor enabled_precisions on its dynamo compiler: "
        "cannot ask for fp16; use precision fp32, or the fp16 ONNX with TensorRT (cosep-deploy build)"
    )


class TorchTensorRTRunner(Runner):
    """Compile an ``nn.Module`` with Torch-TensorRT (dynamo IR, dynamic batch) and run it on one CUDA GPU."""

    def __init__(
        self,
        model: nn.Module,
        *,
        input_shape: Sequence[int],
        batch: tuple[int, int, int] = (1, 8, 40),
        precision: str = "fp32",
        device: str = "cuda",
        tf32: bool = True,
        workspace_mib: int | None = None,
        optimization_level: int | None = None,
        input_name: str = "input",
        output_names: Sequence[str] = ("logits",),
        name: str | None = None,
    ) -> None:
        if precision == "int8":
            raise ConfigError(
                "int8 through torch-tensorrt needs NVIDIA ModelOpt's PyTorch quantization before compiling "
                "(the only int8 route Torch-TensorRT documents for the dynamo IR), which cosep-deploy does not "
                "use: run the calibrated int8 ONNX with TensorRT (cosep-deploy build) or ONNX Runtime instead"
            )
        if precision not in ("fp32", "fp16"):
            raise ConfigError(f"torch-tensorrt precision must be fp32 or fp16, found {precision!r}")
        try:
            self.device = torch.device(device)
        except RuntimeError as exc:
            raise ConfigError(f"invalid torch device {device!r}: use 'cuda' or 'cuda:N'") from exc
        if self.device.type != "cuda":
            raise ConfigError(
                f"Torch-TensorRT compiles for an NVIDIA GPU: device must be 'cuda' or 'cuda:N', not {device!r}"
            )
        if not (len(batch) == 3 and 1 <= batch[0] <= batch[1] <= batch[2]):
            raise ConfigError(f"batch must be (min, opt, max) with 1 <= min <= opt <= max, found {batch}")
        if not input_shape or any(int(d) < 1 for d in input_shape):
            raise ConfigError(f"input_shape must be one sample's positive dims (C, H, W), found {tuple(input_shape)}")
        if optimization_level is not None and not 0 <= optimization_level <= 5:
            raise ConfigError(f"optimization_level must be 0-5, found {optimization_level}")
        if workspace_mib is not None and workspace_mib <= 0:
            raise ConfigError(f"workspace_mib must be positive, found {workspace_mib}")
        self.model, self.precision, self.tf32 = model, precision, tf32
        self.input_shape = tuple(int(d) for d in input_shape)
        self.batch = (int(batch[0]), int(batch[1]), int(batch[2]))
        self.workspace_mib, self.optimization_level = workspace_mib, optimization_level
        self.input_name, self.output_names = input_name, tuple(output_names)
        self.name = name or type(model).__name__
        self._compiled: Any = None
        self._mode = ""
        self._version = ""
        self._events: tuple[torch.cuda.Event, torch.cuda.Event] | None = None

    def activate(self) -> None:
        if self._compiled is not None:
            return
        tt = require("torch_tensorrt", purpose="compiling models with Torch-TensorRT")
        if not torch.cuda.is_available():
            raise EngineBuildError(
                "Torch-TensorRT compiles for an NVIDIA GPU and CUDA is not available here "
                "(torch.cuda.is_available() is False): run on a machine with a GPU and a CUDA build of torch"
            )
        self._version = str(tt.__version__)
        self._mode, options = precision_options(tt.dynamo.compile, self.precision)
        if self.workspace_mib is not None:
            options["workspace_size"] = self.workspace_mib << 20
        if self.optimization_level is not None:
            options["optimization_level"] = self.optimization_level
        lo, opt, hi = ((b, *self.input_shape) for b in self.batch)
        spec = tt.Input(min_shape=lo, opt_shape=opt, max_shape=hi, dtype=torch.float32)
        self.device = compile_device(self.device)  # "cuda" -> "cuda:N": torch_tensorrt.Device needs the index
        module = copy.deepcopy(self.model).eval().to(self.device)
        try:
            compiled = tt.compile(
                module, ir="dynamo", inputs=[spec], device=self.device, disable_tf32=not self.tf32, **options
            )
        except Exception as exc:  # torch.export and TensorRT raise many kinds; the message is what matters
            raise EngineBuildError(f"Torch-TensorRT could not compile {self.name}: {exc}".splitlines()[0]) from exc
        self._compiled = compiled
        self._events = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))

    def deactivate(self) -> None:
        self._compiled = None
        self._events = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def info(self) -> RunnerInfo:
        on_gpu = torch.cuda.is_available()
        return RunnerInfo(
            backend="torch-tensorrt",
            runtime_version=self._version or _installed_version(),
            device=torch.cuda.get_device_name(self.device) if on_gpu else "unknown",
            precision=self.precision,
            settings={
                "device": str(self.device),
                "ir": "dynamo",
                "precision_mode": self._mode or None,
                "batch_range": list(self.batch),
                "tf32": self.tf32,
                "workspace_mib": self.workspace_mib,
                "optimization_level": self.optimization_level,
                "timer": "cuda-events",
                "includes_copies": False,
            },
            input_names=(self.input_name,),
            output_names=self.output_names,
            input_shapes={self.input_name: ("batch", *self.input_shape)},
        )

    def _require_active(self) -> Any:
        if self._compiled is None:
            raise EngineLoadError("TorchTensorRTRunner is not active: use it as a context manager (with ...:)")
        return self._compiled

    def _to_device(self, feed: Mapping[str, np.ndarray]) -> torch.Tensor:
        if self.input_name not in feed:
            raise ConfigError(f"input {self.input_name!r} missing from the feed (it has: {', '.join(feed) or 'none'})")
        batch = np.ascontiguousarray(feed[self.input_name], dtype=np.float32)
        if tuple(batch.shape[1:]) != self.input_shape or not self.batch[0] <= batch.shape[0] <= self.batch[2]:
            raise ConfigError(
                f"input shape {batch.shape} is outside the compiled range: batch {self.batch[0]}..{self.batch[2]} "
                f"of {self.input_shape}"
            )
        return torch.from_numpy(batch).to(self.device)

    def _run(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        compiled = self._require_active()
        with torch.no_grad():
            out = compiled(x)
        return output_tuple(out, self.output_names)

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._require_active()
        outputs = self._run(self._to_device(feed))
        return {n: t.detach().float().cpu().numpy() for n, t in zip(self.output_names, outputs, strict=True)}

    def time_once(self, feed: Mapping[str, np.ndarray]) -> TimedRun:
        """Device time of one call between CUDA events on the current stream; the copy in is done before."""
        self._require_active()
        assert self._events is not None  # set with the compiled module
        x = self._to_device(feed)
        return cuda_event_timed(self.device, self._events, lambda: self._run(x))


def _installed_version() -> str:
    try:
        return metadata.version("torch-tensorrt")
    except metadata.PackageNotFoundError:
        return "not installed"
