"""What this machine can do: torch and CUDA, ONNX Runtime providers, TensorRT, trtexec, Jetson state."""

from __future__ import annotations

import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from cosep_deploy.deps import require
from cosep_deploy.errors import CosepError

__all__ = ["diagnose"]


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _tensorrt() -> dict[str, Any]:
    try:
        trt = require("tensorrt")
    except CosepError as exc:
        return {"available": False, "why": str(exc)}
    info: dict[str, Any] = {"available": True, "version": getattr(trt, "__version__", "?")}
    try:
        logger = trt.Logger(trt.Logger.ERROR)
        builder = trt.Builder(logger)
        info["dla_cores"] = int(builder.num_DLA_cores)
    except Exception as exc:  # no driver / no GPU: TensorRT imports but cannot create a builder
        info["builder"] = f"cannot create a builder: {exc}"
    return info


def _trtexec() -> dict[str, Any]:
    found = shutil.which("trtexec") or next((p for p in ("/usr/src/tensorrt/bin/trtexec",) if Path(p).is_file()), None)
    return {"path": found}


def _jetson() -> dict[str, Any]:
    info: dict[str, Any] = {"is_jetson": Path("/etc/nv_tegra_release").is_file()}
    if info["is_jetson"] and shutil.which("nvpmodel"):
        try:
            out = subprocess.run(["nvpmodel", "-q"], capture_output=True, text=True, timeout=10, check=False)
            info["nvpmodel"] = out.stdout.strip()
        except (OSError, subprocess.TimeoutExpired) as exc:
            info["nvpmodel"] = f"unavailable: {exc}"
    return info


def diagnose() -> dict[str, Any]:
    """A dictionary describing the installed stack and devices (nothing is installed or changed)."""
    import onnxruntime as ort
    import torch

    cuda = torch.cuda.is_available()
    report: dict[str, Any] = {
        "cosep_deploy": _version("cosep-deploy"),
        "torch": {
            "version": torch.__version__,
            "cuda_build": torch.version.cuda,
            "cuda_available": cuda,
            "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
            "threads": torch.get_num_threads(),
        },
        "onnxruntime": {"version": ort.__version__, "providers": ort.get_available_providers()},
        "tensorrt": _tensorrt(),
        "trtexec": _trtexec(),
        "torch_tensorrt": {"version": _version("torch-tensorrt")},
        "cuda_python": {"version": _version("cuda-python")},
        "pycuda": {"version": _version("pycuda")},
        "jetson": _jetson(),
    }
    return report
