"""What machine and software a benchmark ran on, recorded with every result."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["describe_environment"]

_FLAGS_OF_INTEREST = (
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "neon",
    "asimd",
)


def _cpu_model() -> tuple[str, list[str]]:
    cpuinfo = Path("/proc/cpuinfo")
    model: str = platform.processor() or platform.machine()
    flags: list[str] = []
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "Model") and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                present = set(value.split())
                flags = [f for f in _FLAGS_OF_INTEREST if f in present]
    return model, flags


def describe_environment() -> dict[str, Any]:
    """CPU model and vector flags, cores, library versions, and (when present) the GPU and Jetson state."""
    model, flags = _cpu_model()
    libs = {}
    for dist in ("onnxruntime", "torch", "onnx", "numpy", "tensorrt", "cosep-deploy"):
        try:
            libs[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    env: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_model": model,
        "cpu_flags": flags,
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "libraries": libs,
    }
    nvpmodel = Path("/etc/nvpmodel.conf")
    env["jetson"] = nvpmodel.is_file()
    return env
