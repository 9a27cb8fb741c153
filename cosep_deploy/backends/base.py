"""The one small interface every backend implements: load, describe, run, time.

Benchmark and comparison code talks only to :class:`Runner`; it never branches on a backend's type.
A runner is a context manager: entering loads the artifact and allocates buffers, leaving frees them.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

__all__ = ["Runner", "RunnerInfo", "TimedRun", "parse_proc_status_memory", "process_memory"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunnerInfo:
    """What a runner is: recorded with every result so results taken under other settings are refused."""

    backend: str  # "onnxruntime", "tensorrt", "trtexec", "torch", "torch-tensorrt"
    runtime_version: str
    device: str  # "cpu" or the GPU's name
    precision: str  # "fp32", "fp16", "int8"
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # threads, graphs, copies...
    input_names: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ()
    # per input: its shape with symbolic dims as strings (("batch", 3, 224, 224)); empty if unknown
    input_shapes: Mapping[str, tuple[Any, ...]] = dataclasses.field(default_factory=dict)

    def comparable_settings(self) -> dict[str, Any]:
        """The settings two runs must share for a fair dense-vs-pruned comparison (not the model)."""
        return {
            "backend": self.backend,
            "runtime_version": self.runtime_version,
            "device": self.device,
            "precision": self.precision,
            **dict(self.settings),
        }


@dataclasses.dataclass(frozen=True)
class TimedRun:
    """Wall-clock (or device-timer) seconds for one inference call, and whether copies were included."""

    seconds: float
    includes_copies: bool


class Runner(abc.ABC):
    """Load an artifact, report what it is, run a batch, time a batch."""

    _active: bool = False
    #: whether several threads may call :meth:`infer` at once (throughput mode); backends opt in
    concurrent_safe: bool = False

    def __enter__(self) -> Runner:
        self.activate()
        self._active = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._active = False
        self.deactivate()

    @abc.abstractmethod
    def activate(self) -> None:
        """Load the artifact and allocate what running needs."""

    @abc.abstractmethod
    def deactivate(self) -> None:
        """Free everything :meth:`activate` allocated."""

    @abc.abstractmethod
    def info(self) -> RunnerInfo:
        """Describe the runner (backend, versions, device, precision, settings)."""

    @abc.abstractmethod
    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch; inputs and outputs are host arrays keyed by tensor name."""

    def memory(self) -> dict[str, Any] | None:
        """What the loaded engine costs in memory (bytes), where the backend can tell; None otherwise."""
        return None

    def time_once(self, feed: Mapping[str, np.ndarray]) -> TimedRun:
        """Time one inference call. The default is wall clock around :meth:`infer` (host arrays in and
        out, so copies are included); device backends override it with device timers."""
        import time

        start = time.perf_counter()
        self.infer(feed)
        return TimedRun(time.perf_counter() - start, includes_copies=True)


def parse_proc_status_memory(text: str) -> dict[str, int] | None:
    """Resident set now (``VmRSS``) and at its peak (``VmHWM``) in bytes, from the text of Linux's
    ``/proc/<pid>/status`` (values in kB); None if either line is missing."""
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if key in ("VmRSS", "VmHWM") and len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            fields[key] = int(parts[0]) * 1024
    if len(fields) != 2:
        return None
    return {"rss_bytes": fields["VmRSS"], "peak_rss_bytes": fields["VmHWM"]}


def process_memory() -> dict[str, int] | None:
    """This process's resident set now and at its peak (bytes) on Linux; None where ``/proc`` is absent."""
    try:
        return parse_proc_status_memory(Path("/proc/self/status").read_text())
    except OSError:
        return None
