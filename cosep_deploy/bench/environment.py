"""What machine and software a benchmark ran on, recorded with every result."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["NVIDIA_SMI_QUERY", "cpu_model", "describe_environment", "gpu_state", "parse_nvidia_smi"]

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


def cpu_model() -> tuple[str, list[str]]:
    """This CPU's model name and the SIMD flags of interest it has (from /proc/cpuinfo where present)."""
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


# Environment variables that set the size of a math library's thread pool: a runner that leaves its thread
# count to the library (as PyTorch's default does) is governed by them.
_THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _threads() -> dict[str, Any]:
    """Thread-pool variables that are set, and PyTorch's intra/inter-op thread counts if torch is already
    loaded (importing it just to ask would cost seconds)."""
    out: dict[str, Any] = {"env": {k: os.environ[k] for k in _THREAD_ENV_VARS if k in os.environ}}
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "get_num_threads"):
        out["torch_intra_op"] = int(torch.get_num_threads())
        out["torch_inter_op"] = int(torch.get_num_interop_threads())
    return out


def _cpu_governor() -> str | None:
    """The Linux cpufreq governor of CPU 0 ("performance", "powersave", ...); None where not exposed (VMs)."""
    path = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


# fields of `nvidia-smi --query-gpu=... --format=csv,noheader,nounits`, in order, and the keys they get
_GPU_FIELDS = (
    ("name", "name", str),
    ("driver_version", "driver_version", str),
    ("clocks.sm", "clocks_sm_mhz", float),
    ("clocks.mem", "clocks_mem_mhz", float),
    ("clocks.max.sm", "clocks_max_sm_mhz", float),
    ("clocks.max.mem", "clocks_max_mem_mhz", float),
    ("power.limit", "power_limit_w", float),
    ("persistence_mode", "persistence_mode", str),
    ("pstate", "pstate", str),
)
NVIDIA_SMI_QUERY = [
    "nvidia-smi",
    "--query-gpu=" + ",".join(f for f, _, _ in _GPU_FIELDS),
    "--format=csv,noheader,nounits",
]


def parse_nvidia_smi(text: str) -> list[dict[str, Any]]:
    """One dict per GPU line of :data:`NVIDIA_SMI_QUERY`'s output; ``[N/A]`` and unparsable numbers -> None."""
    gpus = []
    for line in text.strip().splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != len(_GPU_FIELDS):
            continue
        gpu: dict[str, Any] = {}
        for (_, key, kind), cell in zip(_GPU_FIELDS, cells, strict=True):
            if cell in ("[N/A]", "N/A", "[Not Supported]", ""):
                gpu[key] = None
            elif kind is float:
                try:
                    gpu[key] = float(cell)
                except ValueError:
                    gpu[key] = None
            else:
                gpu[key] = cell
        gpus.append(gpu)
    return gpus


def gpu_state(timeout_s: float = 10.0) -> list[dict[str, Any]] | None:
    """Every NVIDIA GPU's name, driver, current and maximum clocks, power limit and P-state, read with
    ``nvidia-smi`` when it is on PATH; None when it is not (or fails)."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(NVIDIA_SMI_QUERY, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_nvidia_smi(out.stdout) if out.returncode == 0 else None


_LIBRARIES = (  # distributions whose versions decide timings (absent ones are left out)
    "onnxruntime",
    "onnxruntime-gpu",
    "torch",
    "torch-tensorrt",
    "onnx",
    "numpy",
    "tensorrt",
    "cosep-deploy",
)


def describe_environment() -> dict[str, Any]:
    """CPU model, vector flags and frequency governor, cores, thread settings, library versions, and (when
    present) the GPU clocks and the Jetson power state."""
    model, flags = cpu_model()
    libs = {}
    for dist in _LIBRARIES:
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
        "cpu_governor": _cpu_governor(),
        "threads": _threads(),
        "libraries": libs,
    }
    env["gpus"] = gpu_state() or []
    env["jetson"] = _jetson_state()
    return env


def _jetson_state() -> dict[str, Any] | None:
    """On a Jetson: the board, its L4T release and power state (``nvpmodel -q``, ``jetson_clocks --show``)."""
    from cosep_deploy.board.jetson import detect_jetson, power_state

    board = detect_jetson()
    if board is None:
        return None
    return {"board": board.to_json(), "power": power_state().to_json()}
